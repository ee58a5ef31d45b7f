package boost

import (
	"context"
	"sync"
	"time"
)

// Client queues events and sends them in batches. It is safe for
// concurrent use; create one per process and Close it on shutdown, or the
// events still queued are lost.
type Client struct {
	cfg      Config
	batchURL string
	hooks    hooks
	// ownHTTP is set when the SDK made its own http.Client, whose idle
	// connections it then closes on Close.
	ownHTTP bool

	// ctx is cancelled when Close's context expires: it aborts the
	// request in flight and any backoff wait, so Close stays bounded.
	ctx    context.Context
	cancel context.CancelCauseFunc

	wake chan struct{} // buffered(1): "look at the queue"
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the sending goroutine has returned

	mu       sync.Mutex
	queue    []*item
	inflight int  // events taken off the queue and not yet settled
	closed   bool // set by Close; no new events or flushes after it
	// waiters are Flush and Close calls waiting for the next drain;
	// active are those the drain in progress will answer. Both collect
	// the failures that happen while they wait.
	waiters []*waiter
	active  []*waiter
}

// hooks lets tests replace what would make them slow or random.
type hooks struct {
	sleep func(ctx context.Context, d time.Duration) error
	now   func() time.Time
}

func (h hooks) withDefaults() hooks {
	if h.sleep == nil {
		h.sleep = sleepCtx
	}
	if h.now == nil {
		h.now = time.Now
	}
	return h
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// New checks cfg and starts the client's sending goroutine. It fails for a
// publishable key (ErrPublishableKey), a malformed key (ErrMalformedKey),
// a missing or invalid Endpoint, and out-of-range settings.
func New(cfg Config) (*Client, error) {
	return newClient(cfg, hooks{})
}

func newClient(cfg Config, h hooks) (*Client, error) {
	ownHTTP := cfg.HTTPClient == nil
	cfg, batchURL, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	c := &Client{
		cfg:      cfg,
		batchURL: batchURL,
		hooks:    h.withDefaults(),
		ownHTTP:  ownHTTP,
		ctx:      ctx,
		cancel:   cancel,
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go c.run()
	return c, nil
}

// Track validates e, stamps it (messageId, timestamp) and queues it. It
// never blocks on the network. It returns a *ValidationError if the server
// would refuse the event, a *DeliveryError wrapping ErrQueueFull if the
// queue is full, or ErrClosed after Close; in every such case the event is
// not queued.
//
// ctx is not consulted: Track does no I/O, and an event describing
// something that happened (a purchase, say) should be recorded even if
// the request that caused it has since been cancelled.
func (c *Client) Track(ctx context.Context, e Event) error {
	it, err := buildItem(e, c.hooks.now())
	if err != nil {
		return err
	}
	return c.enqueue(it)
}

// Identify sends a "$identify" event: traits for UserID and, when
// AnonymousID is set, the link from that anonymous id to UserID.
func (c *Client) Identify(ctx context.Context, i Identify) error {
	e, err := i.event()
	if err != nil {
		return err
	}
	return c.Track(ctx, e)
}

// Purchase sends a "purchase" event, with orderId, amount (cents),
// currency and items in its properties.
func (c *Client) Purchase(ctx context.Context, p Purchase) error {
	return c.Track(ctx, p.event(EventPurchase))
}

// CheckoutComplete sends a "checkout_complete" event; it takes the same
// fields as Purchase.
func (c *Client) CheckoutComplete(ctx context.Context, p Checkout) error {
	return c.Track(ctx, p.event(EventCheckoutComplete))
}

// ReferralSuccess sends a "referral_success" event for the referrer
// UserID, with referredUserId and referralCode in its properties.
func (c *Client) ReferralSuccess(ctx context.Context, r Referral) error {
	e, err := r.event()
	if err != nil {
		return err
	}
	return c.Track(ctx, e)
}

func (c *Client) enqueue(it *item) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	if len(c.queue)+c.inflight >= c.cfg.MaxQueueSize {
		c.mu.Unlock()
		err := &DeliveryError{MessageIDs: []string{it.messageID}, Err: ErrQueueFull}
		c.cfg.OnError(err)
		return err
	}
	c.queue = append(c.queue, it)
	full := len(c.queue) >= c.cfg.BatchSize
	c.mu.Unlock()
	if full {
		c.signal()
	}
	return nil
}

func (c *Client) signal() {
	select {
	case c.wake <- struct{}{}:
	default: // a wake-up is already pending; one is enough
	}
}

// Flush sends every event queued before the call and waits until each has
// been accepted or has failed permanently. It returns a *FlushError if any
// event failed permanently while it waited (including the events of a send
// that was already in flight), ctx's error if ctx ends first (the flush
// then goes on in the background), or ErrClosed after Close.
//
// Concurrent Flush calls never send an event twice: all sending happens on
// the client's one goroutine, and calls that arrive together share a
// drain.
func (c *Client) Flush(ctx context.Context) error {
	w, err := c.addWaiter(false)
	if err != nil {
		return err
	}
	c.signal()
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close sends what is still queued, waits for it within ctx, stops the
// sending goroutine and makes every later call return ErrClosed. If ctx
// ends first, the request in flight and any retry wait are cancelled and
// the events not yet accepted are reported as lost (a *DeliveryError
// wrapping ctx's error, inside the returned *FlushError). Close returns
// only once the goroutine has stopped.
func (c *Client) Close(ctx context.Context) error {
	w, err := c.addWaiter(true)
	if err != nil {
		return err
	}
	close(c.stop)
	select {
	case err = <-w.done:
	case <-ctx.Done():
		c.cancel(ctx.Err())
		err = <-w.done
	}
	<-c.done
	return err
}

func (c *Client) addWaiter(closing bool) (*waiter, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	c.closed = closing
	w := &waiter{done: make(chan error, 1)}
	c.waiters = append(c.waiters, w)
	return w, nil
}

// waiter is a Flush or Close call; it collects the failures that happen
// while it waits.
type waiter struct {
	done   chan error // buffered, so a Flush that gave up is not waited for
	failed int
	errs   []error
}

func (w *waiter) add(err error, events int) {
	w.failed += events
	if len(w.errs) < maxFlushErrors {
		w.errs = append(w.errs, err)
	}
}

func (w *waiter) result() error {
	if w.failed == 0 {
		return nil
	}
	return &FlushError{Failed: w.failed, Errors: w.errs}
}

// run is the only goroutine that sends, which is what guarantees a single
// request in flight and no event sent by two flushes.
func (c *Client) run() {
	defer close(c.done)
	defer c.cancel(ErrClosed)
	ticker := time.NewTicker(c.cfg.FlushInterval)
	defer ticker.Stop()
	for {
		tick := false
		select {
		case <-c.wake:
		case <-ticker.C:
			tick = true
		case <-c.stop:
		}
		c.mu.Lock()
		waiters := c.waiters
		c.waiters = nil
		c.active = waiters
		closing := c.closed
		n := len(c.queue)
		if !tick && !closing && len(waiters) == 0 {
			// Woken by size: send full batches only, let the rest wait
			// for company or for the interval.
			n -= n % c.cfg.BatchSize
		}
		c.mu.Unlock()

		// Only what was queued now is sent, so a steady stream of new
		// events cannot keep a Flush waiting forever.
		c.sendQueued(n)

		c.mu.Lock()
		c.active = nil
		c.mu.Unlock()
		for _, w := range waiters {
			w.done <- w.result()
		}
		if closing {
			if c.ownHTTP {
				c.cfg.HTTPClient.CloseIdleConnections()
			}
			return
		}
	}
}

// sendQueued sends the first n queued events, one batch at a time.
func (c *Client) sendQueued(n int) {
	for n > 0 {
		c.mu.Lock()
		k := min(n, c.cfg.BatchSize, len(c.queue))
		batch := make([]*item, k)
		copy(batch, c.queue)
		rest := copy(c.queue, c.queue[k:])
		clear(c.queue[rest:]) // let sent items be collected
		c.queue = c.queue[:rest]
		c.inflight += k
		c.mu.Unlock()
		n -= k
		if k == 0 {
			return
		}

		c.sendBatch(batch)

		c.mu.Lock()
		c.inflight -= k
		c.mu.Unlock()
	}
}

// fail reports events lost as a whole (not per-item rejections).
func (c *Client) fail(items []*item, attempts int, err error) {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.messageID
	}
	c.report(&DeliveryError{MessageIDs: ids, Attempts: attempts, Err: err}, len(items))
}

// report hands a permanent failure of events to OnError and to every
// Flush or Close waiting at that moment.
func (c *Client) report(err error, events int) {
	c.mu.Lock()
	for _, w := range c.active {
		w.add(err, events)
	}
	for _, w := range c.waiters {
		w.add(err, events)
	}
	c.mu.Unlock()
	c.cfg.OnError(err)
}
