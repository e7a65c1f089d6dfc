-- schedule: 1m
-- threshold: 0
-- description: payments for an order the orders service does not have
-- Only payments made a minute before the orders source is complete
-- through count: a newer order may still be on its way into the lake.
SELECT p.id AS payment_id,
       p.order_id,
       p.amount,
       p.method,
       p.created_at
FROM payments.public.payments p
LEFT JOIN orders.public.orders o ON o.id = p.order_id
WHERE o.id IS NULL
  AND p.created_at < (SELECT complete_through FROM cdclake_sources WHERE source = 'orders') - INTERVAL 1 MINUTE
ORDER BY p.id
