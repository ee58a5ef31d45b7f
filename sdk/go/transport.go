package boost

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxResponseBytes bounds how much of an answer is read: a full batch
// answer is well under it, and a misbehaving proxy cannot make us buffer
// an arbitrary page.
const maxResponseBytes = 4 << 20

// sendBatch splits batch into requests that fit MaxRequestBytes (so a
// batch of large events does not cost a 413 round trip) and delivers
// each.
func (c *Client) sendBatch(batch []*item) {
	start := c.hooks.now()
	size := envelopeBytes
	first := 0
	for i, it := range batch {
		n := len(it.raw) + 1 // the comma
		if i > first && size+n > MaxRequestBytes {
			c.deliver(batch[first:i], start)
			first, size = i, envelopeBytes
		}
		size += n
	}
	c.deliver(batch[first:], start)
}

// envelopeBytes is the size of the request body around the items.
var envelopeBytes = len(`{"batch":[],"sentAt":"2006-01-02T15:04:05.000Z"}`)

// outcome is what one request did with its items.
type outcome struct {
	retry      []*item       // items to send again
	lost       []*item       // with permanent: the items lost, if not all
	err        error         // why they are retried, or why all failed
	permanent  bool          // err is final for all items
	split      bool          // 413: halve and resend
	retryAfter time.Duration // from Retry-After; negative if absent
}

// deliver sends items until each is accepted, rejected or given up on.
// start is when the batch was first sent; MaxRetryTime counts from it.
func (c *Client) deliver(items []*item, start time.Time) {
	for attempt := 1; ; attempt++ {
		if c.ctx.Err() != nil {
			c.fail(items, attempt-1, fmt.Errorf("boost: send cancelled: %w", context.Cause(c.ctx)))
			return
		}
		res := c.attempt(items)
		switch {
		case res.split:
			if len(items) == 1 {
				// A single item too large for the server: it will never
				// fit, so drop it alone.
				c.fail(items, attempt, res.err)
				return
			}
			mid := len(items) / 2
			c.deliver(items[:mid], start)
			c.deliver(items[mid:], start)
			return
		case res.permanent:
			lost := items
			if res.lost != nil {
				lost = res.lost
			}
			c.fail(lost, attempt, res.err)
			return
		case len(res.retry) == 0:
			return
		}
		items = res.retry
		if c.ctx.Err() != nil {
			c.fail(items, attempt, fmt.Errorf("boost: send cancelled: %w (last error: %v)", context.Cause(c.ctx), res.err))
			return
		}
		if attempt >= c.cfg.MaxAttempts {
			c.fail(items, attempt, res.err)
			return
		}
		delay := res.retryAfter
		if delay < 0 {
			delay = c.backoff(attempt)
		}
		if elapsed := c.hooks.now().Sub(start); elapsed+delay > c.cfg.MaxRetryTime {
			c.fail(items, attempt, fmt.Errorf("%w (giving up: waiting %v more would pass MaxRetryTime %v)", res.err, delay, c.cfg.MaxRetryTime))
			return
		}
		if err := c.hooks.sleep(c.ctx, delay); err != nil {
			c.fail(items, attempt, fmt.Errorf("boost: send cancelled: %w (last error: %v)", err, res.err))
			return
		}
	}
}

// backoff is exponential with full jitter: uniform in [0, min(max,
// base·2^(attempt-1))]. Full jitter spreads out the clients that failed
// together, so they do not all come back at the same instant.
func (c *Client) backoff(attempt int) time.Duration {
	d, ceiling := c.cfg.RetryBaseDelay, c.cfg.RetryMaxDelay
	for i := 1; i < attempt && d < ceiling; i++ {
		if d > ceiling/2 {
			d = ceiling
			break
		}
		d *= 2
	}
	d = min(d, ceiling)
	return time.Duration(rand.Int64N(int64(d) + 1))
}

// batchAnswer is the body of a 202, and of a 400 in which every item was
// rejected.
type batchAnswer struct {
	Status   string `json:"status"`
	Accepted []struct {
		Index int    `json:"index"`
		ID    string `json:"id"`
	} `json:"accepted"`
	Rejected []struct {
		Index   int    `json:"index"`
		Code    string `json:"code"`
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"rejected"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

// attempt makes one request for items.
func (c *Client) attempt(items []*item) outcome {
	body := c.encode(items)
	req, err := http.NewRequestWithContext(c.ctx, http.MethodPost, c.batchURL, bytes.NewReader(body))
	if err != nil { // only for a bad URL, which New has ruled out
		return outcome{err: err, permanent: true}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	req.Header.Set("x-api-key", c.cfg.APIKey)

	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		// Network errors are retried: the server may or may not have
		// stored the batch, and resending the same messageIds is safe.
		return outcome{retry: items, err: fmt.Errorf("boost: sending batch: %w", err), retryAfter: -1}
	}
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	resp.Body.Close()

	retryAfter := parseRetryAfter(resp.Header.Get("Retry-After"), c.hooks.now())
	var ans batchAnswer
	parsed := json.Unmarshal(data, &ans) == nil

	switch status := resp.StatusCode; {
	case status >= 200 && status < 300:
		if readErr != nil {
			// Cut off mid-answer: we do not know which ids were stored.
			// Resending is harmless (same messageIds), so retry.
			return outcome{retry: items, err: fmt.Errorf("boost: reading answer: %w", readErr), retryAfter: -1}
		}
		if !parsed {
			// The server said yes but not in a form we understand; do not
			// resend forever. Report delivery without ids.
			c.delivered(items)
			return outcome{}
		}
		missing := c.settle(items, &ans)
		if len(missing) > 0 {
			return outcome{retry: missing, retryAfter: -1,
				err: fmt.Errorf("boost: the server's answer did not mention %d of %d events", len(missing), len(items))}
		}
		return outcome{}

	case status == http.StatusBadRequest && parsed && (len(ans.Rejected) > 0 || len(ans.Accepted) > 0):
		// invalid_batch: every item was judged, none accepted (or a
		// server that mixes the two). Items are dropped one by one, with
		// their own reasons; resending would not change the verdict.
		apiErr := apiError(resp, &ans, data, retryAfter)
		if missing := c.settle(items, &ans); len(missing) > 0 {
			return outcome{lost: missing, err: apiErr, permanent: true}
		}
		return outcome{}

	case status == http.StatusRequestEntityTooLarge:
		return outcome{split: true, err: apiError(resp, &ans, data, retryAfter)}

	case status == http.StatusTooManyRequests, status == http.StatusRequestTimeout, status >= 500:
		return outcome{retry: items, err: apiError(resp, &ans, data, retryAfter), retryAfter: retryAfter}

	default:
		// 400 malformed, 401, 403, 404…: the same request would get the
		// same answer, so it is not retried.
		return outcome{err: apiError(resp, &ans, data, retryAfter), permanent: true}
	}
}

// settle reports the accepted and rejected items of an answer and returns
// the items it did not mention.
func (c *Client) settle(items []*item, ans *batchAnswer) (missing []*item) {
	seen := make([]bool, len(items))
	var delivered []Delivered
	for _, a := range ans.Accepted {
		if a.Index < 0 || a.Index >= len(items) || seen[a.Index] {
			continue
		}
		seen[a.Index] = true
		delivered = append(delivered, Delivered{MessageID: items[a.Index].messageID, ID: a.ID})
	}
	if len(delivered) > 0 && c.cfg.OnDelivered != nil {
		c.cfg.OnDelivered(delivered)
	}
	for _, r := range ans.Rejected {
		if r.Index < 0 || r.Index >= len(items) || seen[r.Index] {
			continue
		}
		seen[r.Index] = true
		it := items[r.Index]
		c.report(&RejectedError{MessageID: it.messageID, Event: it.event, Code: r.Code, Field: r.Field, Message: r.Message}, 1)
	}
	for i, ok := range seen {
		if !ok {
			missing = append(missing, items[i])
		}
	}
	return missing
}

// delivered reports items accepted without ids.
func (c *Client) delivered(items []*item) {
	if c.cfg.OnDelivered == nil {
		return
	}
	d := make([]Delivered, len(items))
	for i, it := range items {
		d[i].MessageID = it.messageID
	}
	c.cfg.OnDelivered(d)
}

// encode builds a request body. sentAt is the time of this attempt: the
// server compares it with its own clock to correct the events' client
// timestamps for clock skew.
func (c *Client) encode(items []*item) []byte {
	size := envelopeBytes
	for _, it := range items {
		size += len(it.raw) + 1
	}
	b := make([]byte, 0, size)
	b = append(b, `{"batch":[`...)
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it.raw...)
	}
	b = append(b, `],"sentAt":"`...)
	b = append(b, formatTime(c.hooks.now())...)
	b = append(b, `"}`...)
	return b
}

func apiError(resp *http.Response, ans *batchAnswer, body []byte, retryAfter time.Duration) *APIError {
	e := &APIError{Status: resp.StatusCode, RetryAfter: max(retryAfter, 0)}
	if ans.Error != nil {
		e.Code, e.Message, e.Field = ans.Error.Code, ans.Error.Message, ans.Error.Field
	}
	if e.Code == "" {
		e.Code = strings.ReplaceAll(strings.ToLower(http.StatusText(resp.StatusCode)), " ", "_")
		if e.Code == "" {
			e.Code = "http_" + strconv.Itoa(resp.StatusCode)
		}
	}
	if e.Message == "" && ans.Error == nil {
		e.Message = truncate(strings.TrimSpace(string(body)), 200)
	}
	return e
}

// parseRetryAfter reads delay-seconds or an HTTP date; it returns a
// negative duration when the header is absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return -1
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return -1
		}
		if secs > int64(24*time.Hour/time.Second) {
			secs = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return -1
}
