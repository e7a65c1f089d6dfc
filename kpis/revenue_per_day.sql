-- schedule: 5m
-- description: revenue (paid and shipped orders) per day of order
SELECT CAST(date_trunc('day', created_at) AS date) AS day,
       count(*) FILTER (WHERE status IN ('paid', 'shipped')) AS paid_orders,
       coalesce(sum(amount) FILTER (WHERE status IN ('paid', 'shipped')), 0.00) AS revenue
FROM public.orders
GROUP BY 1
ORDER BY 1
