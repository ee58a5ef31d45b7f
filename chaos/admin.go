package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// admin drives the management API with the run's admin token.
type admin struct {
	base   string
	token  string
	client *http.Client
}

// tenant is the organization, project and keys a scenario loads.
type tenant struct {
	OrganizationID string
	ProjectID      string
	Publishable    apiKey
	Secret         apiKey
}

// apiKey is a key the suite created; Plaintext is never printed.
type apiKey struct {
	ID        string
	Plaintext string
}

// call sends one request and decodes a 2xx body into out. It retries
// network errors and 5xx answers (the API may have just started) for up to
// a minute; other answers are returned as they are.
func (a *admin) call(ctx context.Context, method, path string, body, out any) (int, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return 0, err
		}
	}
	deadline := time.Now().Add(time.Minute)
	for attempt := 0; ; attempt++ {
		status, respBody, err := a.once(ctx, method, path, payload)
		retryable := err != nil || status >= 500
		if !retryable || time.Now().After(deadline) {
			if err != nil {
				return 0, fmt.Errorf("%s %s: %w", method, path, err)
			}
			if status/100 == 2 && out != nil {
				if err := json.Unmarshal(respBody, out); err != nil {
					return status, fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
				}
			}
			return status, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(backoffFor(attempt, 0)):
		}
	}
}

func (a *admin) once(ctx context.Context, method, path string, payload []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, bytes.NewReader(payload))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, b, nil
}

// await polls GET path until it answers 200.
func (a *admin) await(ctx context.Context, path string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		status, err := a.call(ctx, http.MethodGet, path, nil, nil)
		if err == nil && status == http.StatusOK {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s to be readable (last answer %d): %w", path, status, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// create POSTs body to path, expects 201 or 202 with an id, and waits
// until the resource reads back (a 202 means the read model lags).
func (a *admin) create(ctx context.Context, path string, body any, out any, readPath func(id string) string) (string, error) {
	var raw json.RawMessage
	status, err := a.call(ctx, http.MethodPost, path, body, &raw)
	if err != nil {
		return "", err
	}
	if status != http.StatusCreated && status != http.StatusAccepted {
		return "", fmt.Errorf("POST %s answered %d", path, status)
	}
	var idOnly struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &idOnly); err != nil || idOnly.ID == "" {
		return "", fmt.Errorf("POST %s: no id in the answer", path)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return "", fmt.Errorf("POST %s: decoding the answer: %w", path, err)
		}
	}
	if err := a.await(ctx, readPath(idOnly.ID)); err != nil {
		return "", err
	}
	return idOnly.ID, nil
}

// setUpTenant creates an organization, a project, a publishable and a
// secret key, and waits until all of them are readable.
func (a *admin) setUpTenant(ctx context.Context, name string) (*tenant, error) {
	t := &tenant{}
	var err error
	t.OrganizationID, err = a.create(ctx, "/v1/organizations", map[string]string{"name": name}, nil,
		func(id string) string { return "/v1/organizations/" + id })
	if err != nil {
		return nil, fmt.Errorf("creating the organization: %w", err)
	}
	t.ProjectID, err = a.create(ctx, "/v1/organizations/"+t.OrganizationID+"/projects", map[string]string{"name": name}, nil,
		func(id string) string { return "/v1/projects/" + id })
	if err != nil {
		return nil, fmt.Errorf("creating the project: %w", err)
	}
	if t.Publishable, err = a.createKey(ctx, t.ProjectID, "chaos publishable", "publishable"); err != nil {
		return nil, err
	}
	if t.Secret, err = a.createKey(ctx, t.ProjectID, "chaos secret", "secret"); err != nil {
		return nil, err
	}
	return t, nil
}

// createKey creates a key and waits until it reads back.
func (a *admin) createKey(ctx context.Context, projectID, name, typ string) (apiKey, error) {
	var created struct {
		Key string `json:"key"`
	}
	id, err := a.create(ctx, "/v1/projects/"+projectID+"/api-keys", map[string]string{"name": name, "type": typ}, &created,
		func(id string) string { return "/v1/projects/" + projectID + "/api-keys/" + id })
	if err != nil {
		return apiKey{}, fmt.Errorf("creating the %s key: %w", typ, err)
	}
	if created.Key == "" {
		return apiKey{}, fmt.Errorf("creating the %s key: the answer carried no key", typ)
	}
	return apiKey{ID: id, Plaintext: created.Key}, nil
}

// revokeKey revokes a key and returns the answer's status.
func (a *admin) revokeKey(ctx context.Context, projectID, keyID string) (int, error) {
	return a.call(ctx, http.MethodDelete, "/v1/projects/"+projectID+"/api-keys/"+keyID, nil, nil)
}
