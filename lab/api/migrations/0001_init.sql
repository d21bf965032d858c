-- 0001: users (login) and mailboxes (listed by GET /api/v1/mailboxes).
CREATE TABLE users (
    id            bigserial PRIMARY KEY,
    email         text NOT NULL UNIQUE CHECK (email = lower(email)),
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('admin', 'user')),
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE mailboxes (
    id           bigserial PRIMARY KEY,
    address      text NOT NULL UNIQUE CHECK (address = lower(address)),
    display_name text NOT NULL,
    owner_id     bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
