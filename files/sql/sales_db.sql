-- sales_db: the sales team's operational database. Applied once, on the first start of an
-- empty volume (the postgres image runs /docker-entrypoint-initdb.d only then).

CREATE TABLE customers (
    customer_id   SERIAL PRIMARY KEY,
    customer_name VARCHAR(200) NOT NULL,
    email         VARCHAR(320) NOT NULL UNIQUE,
    country       VARCHAR(100),
    segment       VARCHAR(50),
    created_at    TIMESTAMP NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    order_id      SERIAL PRIMARY KEY,
    customer_id   INTEGER NOT NULL REFERENCES customers (customer_id) ON DELETE RESTRICT,
    order_date    DATE NOT NULL DEFAULT current_date,
    total_amount  NUMERIC(12, 2) NOT NULL CHECK (total_amount >= 0),
    status        VARCHAR(20) NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded')),
    created_at    TIMESTAMP NOT NULL DEFAULT now()
);

CREATE INDEX orders_customer_id_idx ON orders (customer_id);
CREATE INDEX orders_order_date_idx ON orders (order_date);
CREATE INDEX orders_status_idx ON orders (status);
CREATE INDEX customers_created_at_idx ON customers (created_at);
