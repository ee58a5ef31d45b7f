// Package commands is the write side: the commands the outside world sends,
// the bus that carries them over Watermill and NATS JetStream, and the
// handlers that decide on them against aggregate history and append domain
// events to the event store. Handlers never touch read models.
package commands

import (
	"errors"
	"strings"
	"time"

	"github.com/gamify/boost/domain"
)

// Header is carried by every command: its own id (the JetStream message id,
// so a retried send is stored once) and the request's correlation id.
type Header struct {
	CommandID     string    `json:"commandId"`
	CorrelationID string    `json:"correlationId,omitempty"`
	IssuedAt      time.Time `json:"issuedAt"`
}

// NewHeader stamps a command with a fresh id.
func NewHeader(correlationID string) Header {
	return Header{CommandID: domain.NewID(), CorrelationID: correlationID, IssuedAt: time.Now().UTC()}
}

// CreateOrganization opens a new tenant.
type CreateOrganization struct {
	Header
	OrganizationID string `json:"organizationId"`
	Name           string `json:"name"`
}

// CreateProject adds a project to an existing organization.
type CreateProject struct {
	Header
	ProjectID      string `json:"projectId"`
	OrganizationID string `json:"organizationId"`
	Name           string `json:"name"`
}

// CreateKey registers an API key the API has already minted. Only the
// hash and display prefix travel; the plaintext never leaves the API.
type CreateKey struct {
	Header
	ProjectID string         `json:"projectId"`
	KeyID     string         `json:"keyId"`
	Name      string         `json:"name"`
	Type      domain.KeyType `json:"type"`
	Hash      string         `json:"hash"`
	Prefix    string         `json:"prefix"`
}

// RevokeKey disables a key for good.
type RevokeKey struct {
	Header
	ProjectID string `json:"projectId"`
	KeyID     string `json:"keyId"`
}

// ValidationError names the field that is wrong and why; the API shows it
// to the caller as a 400. It is the domain's one kind of field error.
type ValidationError = domain.FieldError

// ValidateName checks a resource name with the domain's one rule for
// names: storable text, not blank, at most domain.MaxNameLen characters.
func ValidateName(field, name string) error { return domain.CheckName(field, name) }

func validateID(field, id string) error {
	if _, err := domain.ParseID(id); err != nil {
		return &ValidationError{Field: field, Reason: "must be a UUID"}
	}
	return nil
}

// Validate checks the command on its own, before any history is read.
func (c *CreateOrganization) Validate() error {
	return errors.Join(validateID("organizationId", c.OrganizationID), ValidateName("name", c.Name))
}

// Validate checks the command on its own, before any history is read.
func (c *CreateProject) Validate() error {
	return errors.Join(validateID("projectId", c.ProjectID), validateID("organizationId", c.OrganizationID),
		ValidateName("name", c.Name))
}

// Validate checks the command on its own, before any history is read.
func (c *CreateKey) Validate() error {
	var errs []error
	errs = append(errs, validateID("projectId", c.ProjectID), validateID("keyId", c.KeyID), ValidateName("name", c.Name))
	if !c.Type.Valid() {
		errs = append(errs, &ValidationError{Field: "type", Reason: `must be "publishable" or "secret"`})
	}
	if len(c.Hash) != 64 {
		errs = append(errs, &ValidationError{Field: "hash", Reason: "must be a hex SHA-256"})
	}
	if !strings.HasPrefix(c.Prefix, "pk_live_") && !strings.HasPrefix(c.Prefix, "sk_live_") {
		errs = append(errs, &ValidationError{Field: "prefix", Reason: "must be a key display prefix"})
	}
	if len(c.Prefix) > 16 {
		// A long "prefix" could be a whole plaintext key: refuse it.
		errs = append(errs, &ValidationError{Field: "prefix", Reason: "is too long to be a display prefix"})
	}
	return errors.Join(errs...)
}

// Validate checks the command on its own, before any history is read.
func (c *RevokeKey) Validate() error {
	return errors.Join(validateID("projectId", c.ProjectID), validateID("keyId", c.KeyID))
}
