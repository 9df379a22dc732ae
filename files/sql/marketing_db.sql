-- marketing_db: the marketing team's operational database. Applied once, on the first start of
-- an empty volume.

CREATE TABLE campaigns (
    campaign_id   SERIAL PRIMARY KEY,
    campaign_name VARCHAR(200) NOT NULL UNIQUE,
    channel       VARCHAR(50) NOT NULL,
    budget        NUMERIC(12, 2) NOT NULL DEFAULT 0 CHECK (budget >= 0),
    start_date    DATE NOT NULL,
    end_date      DATE,
    created_at    TIMESTAMP NOT NULL DEFAULT now(),
    CHECK (end_date IS NULL OR end_date >= start_date)
);

CREATE TABLE leads (
    lead_id       SERIAL PRIMARY KEY,
    email         VARCHAR(320) NOT NULL,
    source        VARCHAR(50) NOT NULL,
    campaign_id   INTEGER REFERENCES campaigns (campaign_id) ON DELETE SET NULL,
    status        VARCHAR(20) NOT NULL DEFAULT 'new'
                  CHECK (status IN ('new', 'contacted', 'qualified', 'converted', 'lost')),
    created_at    TIMESTAMP NOT NULL DEFAULT now()
);

CREATE INDEX leads_campaign_id_idx ON leads (campaign_id);
CREATE INDEX leads_email_idx ON leads (email);
CREATE INDEX leads_created_at_idx ON leads (created_at);
CREATE INDEX campaigns_channel_idx ON campaigns (channel);
