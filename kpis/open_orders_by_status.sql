-- schedule: 1m
-- description: orders not shipped yet, by status, with the age of the oldest
SELECT status,
       count(*) AS orders,
       sum(amount) AS amount,
       min(created_at) AS oldest
FROM public.orders
WHERE status IN ('placed', 'paid')
GROUP BY status
ORDER BY status
