package commands

import (
	"fmt"

	"github.com/gamify/boost/domain"
)

// organization is the state an organization's commands are decided on.
type organization struct {
	exists bool
}

func foldOrganization(history []domain.Event) organization {
	var o organization
	for _, e := range history {
		if e.Type == domain.OrganizationCreated {
			o.exists = true
		}
	}
	return o
}

// project is the state a project's commands are decided on: it owns its
// keys, so two concurrent revokes of one key are serialised on its subject.
type project struct {
	exists         bool
	organizationID string
	keys           map[string]projectKey
}

type projectKey struct {
	hash    string
	revoked bool
}

func foldProject(history []domain.Event) (project, error) {
	p := project{keys: map[string]projectKey{}}
	for i := range history {
		e := &history[i]
		switch e.Type {
		case domain.ProjectCreated:
			p.exists = true
			p.organizationID = e.OrganizationID
		case domain.APIKeyCreated:
			d, err := domain.DecodeData[domain.APIKeyCreatedData](e)
			if err != nil {
				return p, err
			}
			p.keys[d.KeyID] = projectKey{hash: d.Hash}
		case domain.APIKeyRevoked:
			d, err := domain.DecodeData[domain.APIKeyRevokedData](e)
			if err != nil {
				return p, err
			}
			k := p.keys[d.KeyID]
			k.revoked = true
			p.keys[d.KeyID] = k
		default:
			return p, fmt.Errorf("project aggregate: unexpected event type %q", e.Type)
		}
	}
	return p, nil
}
