-- schedule: 1m
-- description: orders placed and their amount per hour, last 48 hours
SELECT date_trunc('hour', created_at) AS hour,
       count(*) AS orders,
       sum(amount) AS amount
FROM public.orders
WHERE created_at >= now() - interval '48 hours'
GROUP BY 1
ORDER BY 1
