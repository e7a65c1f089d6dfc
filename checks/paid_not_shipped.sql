-- schedule: 30s
-- threshold: 0
-- description: orders paid more than 10 minutes ago that the shipping service has not shipped
SELECT o.id AS order_id,
       o.customer_id,
       o.amount,
       p.created_at AS paid_at,
       round(date_diff('second', p.created_at, now()) / 60.0, 1) AS minutes_waiting
FROM orders.public.orders o
JOIN payments.public.payments p ON p.order_id = o.id AND p.status = 'captured'
LEFT JOIN shipping.public.shipments s ON s.order_id = o.id
WHERE s.id IS NULL
  AND o.status <> 'cancelled'
  AND p.created_at < now() - INTERVAL 10 MINUTE
ORDER BY p.created_at, o.id
