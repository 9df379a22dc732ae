-- A domain-owned database: where the domain publishes its data products for other domains.
-- Applied once, on the first start of an empty volume.

CREATE SCHEMA data_products;

CREATE TABLE data_products.registry (
    product_name  VARCHAR(200) PRIMARY KEY,
    owner         VARCHAR(200) NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    source_table  VARCHAR(400) NOT NULL,
    published_at  TIMESTAMP NOT NULL DEFAULT now()
);
