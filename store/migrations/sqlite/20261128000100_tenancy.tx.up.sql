-- Tenancy read models: organizations, projects and API keys, plus the
-- checkpoints every projection stores in the same transaction as its rows.
CREATE TABLE organizations (
    id         text        PRIMARY KEY,
    name       text        NOT NULL,
    created_at timestamp   NOT NULL
);

--bun:split

CREATE TABLE projects (
    id              text        PRIMARY KEY,
    organization_id text        NOT NULL,
    name            text        NOT NULL,
    created_at      timestamp   NOT NULL
);

--bun:split

CREATE INDEX projects_organization_idx ON projects (organization_id, id);

--bun:split

CREATE TABLE api_keys (
    id              text        PRIMARY KEY,
    project_id      text        NOT NULL,
    organization_id text        NOT NULL,
    name            text        NOT NULL,
    type            text        NOT NULL,
    key_hash        text        NOT NULL UNIQUE,
    prefix          text        NOT NULL,
    created_at      timestamp   NOT NULL,
    revoked_at      timestamp  ,
    last_used_at    timestamp  
);

--bun:split

CREATE INDEX api_keys_project_idx ON api_keys (project_id, id);

--bun:split

CREATE TABLE projection_checkpoints (
    projection text        NOT NULL,
    topic      text        NOT NULL,
    partition  integer     NOT NULL,
    next_offset bigint     NOT NULL,
    updated_at timestamp   NOT NULL,
    PRIMARY KEY (projection, topic, partition)
);
