// Package demo holds the demo's three microservice databases (orders,
// payments, shipping) and a workload that places, pays, ships, delivers
// and cancels orders across them at a steady rate, as three services
// would, each writing only its own database.
package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
)

// Schemas maps each service database to its tables.
var Schemas = map[string]string{
	"orders": `
CREATE TABLE customers (id bigserial PRIMARY KEY, name text NOT NULL, city text NOT NULL);
CREATE TABLE orders (
	id bigserial PRIMARY KEY,
	customer_id bigint NOT NULL REFERENCES customers,
	status text NOT NULL DEFAULT 'placed', -- placed, paid, shipped, delivered, cancelled
	amount numeric(12,2) NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);`,
	"payments": `
CREATE TABLE payments (
	id bigserial PRIMARY KEY,
	order_id bigint NOT NULL UNIQUE,   -- an order of the orders service
	amount numeric(12,2) NOT NULL,
	method text NOT NULL,
	status text NOT NULL,             -- captured, refunded
	created_at timestamptz NOT NULL DEFAULT now()
);`,
	"shipping": `
CREATE TABLE shipments (
	id bigserial PRIMARY KEY,
	order_id bigint NOT NULL UNIQUE,   -- an order of the orders service
	carrier text NOT NULL,
	status text NOT NULL,             -- in_transit, delivered
	shipped_at timestamptz NOT NULL DEFAULT now(),
	delivered_at timestamptz
);`,
}

// Services lists the databases in a stable order.
var Services = []string{"orders", "payments", "shipping"}

// Workload writes to the three services' databases.
type Workload struct {
	conns map[string]*pgx.Conn
	rng   *rand.Rand
	// Counts of what it did, for the summary.
	Placed, Paid, Shipped, Delivered, Cancelled int
}

// NewWorkload connects to the three databases; url returns a database's URL.
func NewWorkload(ctx context.Context, url func(db string) string) (*Workload, error) {
	w := &Workload{conns: map[string]*pgx.Conn{}, rng: rand.New(rand.NewPCG(1, 2))}
	for _, s := range Services {
		c, err := pgx.Connect(ctx, url(s))
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("connect to %s: %w", s, err)
		}
		w.conns[s] = c
	}
	return w, nil
}

// Close closes the connections.
func (w *Workload) Close() {
	for _, c := range w.conns {
		c.Close(context.Background())
	}
}

// Seed creates customers.
func (w *Workload) Seed(ctx context.Context, customers int) error {
	_, err := w.conns["orders"].Exec(ctx, `INSERT INTO customers (name, city)
		SELECT 'customer ' || g, (ARRAY['Berlin','Lisbon','Oslo','Turin','Gdansk','Lyon'])[1 + g % 6]
		FROM generate_series(1, $1) g`, customers)
	return err
}

// Run places about rate orders per second until ctx ends or d passes, and
// moves older orders on through payment, shipping and delivery.
func (w *Workload) Run(ctx context.Context, d time.Duration, rate int) error {
	tick := time.NewTicker(time.Second / time.Duration(max(rate, 1)))
	defer tick.Stop()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := w.step(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	return nil
}

func (w *Workload) step(ctx context.Context) error {
	orders, payments, shipping := w.conns["orders"], w.conns["payments"], w.conns["shipping"]
	if _, err := orders.Exec(ctx, `INSERT INTO orders (customer_id, amount)
		VALUES (1 + floor(random() * (SELECT count(*) FROM customers))::bigint, round((5 + random() * 195)::numeric, 2))`); err != nil {
		return err
	}
	w.Placed++
	switch r := w.rng.IntN(100); {
	case r < 70: // the payment service captures the oldest unpaid order
		var id int64
		var amount string
		err := orders.QueryRow(ctx, `UPDATE orders SET status = 'paid', updated_at = now()
			WHERE id = (SELECT id FROM orders WHERE status = 'placed' ORDER BY id LIMIT 1) RETURNING id, amount::text`).Scan(&id, &amount)
		if err == pgx.ErrNoRows {
			return nil
		} else if err != nil {
			return err
		}
		method := []string{"card", "card", "paypal", "invoice"}[w.rng.IntN(4)]
		if _, err := payments.Exec(ctx, `INSERT INTO payments (order_id, amount, method, status) VALUES ($1, $2::numeric, $3, 'captured')`, id, amount, method); err != nil {
			return err
		}
		w.Paid++
	case r < 85: // shipping picks up a paid order (sometimes it is late)
		var id int64
		err := orders.QueryRow(ctx, `UPDATE orders SET status = 'shipped', updated_at = now()
			WHERE id = (SELECT id FROM orders WHERE status = 'paid' ORDER BY id LIMIT 1) RETURNING id`).Scan(&id)
		if err == pgx.ErrNoRows {
			return nil
		} else if err != nil {
			return err
		}
		carrier := []string{"DHL", "UPS", "PostNL"}[w.rng.IntN(3)]
		if _, err := shipping.Exec(ctx, `INSERT INTO shipments (order_id, carrier, status) VALUES ($1, $2, 'in_transit')`, id, carrier); err != nil {
			return err
		}
		w.Shipped++
	case r < 95: // a parcel arrives
		var id int64
		err := shipping.QueryRow(ctx, `UPDATE shipments SET status = 'delivered', delivered_at = now()
			WHERE id = (SELECT id FROM shipments WHERE status = 'in_transit' ORDER BY id LIMIT 1) RETURNING order_id`).Scan(&id)
		if err == pgx.ErrNoRows {
			return nil
		} else if err != nil {
			return err
		}
		if _, err := orders.Exec(ctx, `UPDATE orders SET status = 'delivered', updated_at = now() WHERE id = $1`, id); err != nil {
			return err
		}
		w.Delivered++
	default: // a customer cancels a placed or paid order; a paid one is refunded
		var id int64
		var was string
		err := orders.QueryRow(ctx, `WITH c AS (SELECT id, status FROM orders WHERE status IN ('placed', 'paid') ORDER BY random() LIMIT 1)
			UPDATE orders o SET status = 'cancelled', updated_at = now() FROM c WHERE o.id = c.id RETURNING o.id, c.status`).Scan(&id, &was)
		if err == pgx.ErrNoRows {
			return nil
		} else if err != nil {
			return err
		}
		if was == "paid" {
			if _, err := payments.Exec(ctx, `UPDATE payments SET status = 'refunded' WHERE order_id = $1`, id); err != nil {
				return err
			}
		}
		w.Cancelled++
	}
	return nil
}
