-- schedule: 1m
-- description: paid orders shipped per hour and the median wait from payment to shipment (joins the payments and shipping services)
SELECT date_trunc('hour', s.shipped_at) AS hour,
       count(*) AS shipped,
       round(median(epoch(s.shipped_at) - epoch(p.created_at)), 1) AS median_seconds_paid_to_shipped
FROM payments.public.payments p
JOIN shipping.public.shipments s ON s.order_id = p.order_id
GROUP BY 1
ORDER BY 1
