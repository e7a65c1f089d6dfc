-- schedule: 15m
-- description: customers, orders and revenue per customer city
SELECT c.city,
       count(DISTINCT c.id) AS customers,
       count(o.id) AS orders,
       coalesce(sum(o.amount) FILTER (WHERE o.status IN ('paid', 'shipped')), 0.00) AS revenue
FROM public.customers c
LEFT JOIN public.orders o ON o.customer_id = c.id
GROUP BY c.city
ORDER BY revenue DESC, c.city
