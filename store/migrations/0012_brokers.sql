-- Destinations beside webhooks and NATS (issue 18 part 1): type 'amqp'
-- publishes to a RabbitMQ exchange, 'kafka' produces to a Kafka topic.
-- Their dest_config and dest_sealed columns are used as for 'nats'
-- (0007). SQLite cannot alter a CHECK constraint, so the type column is
-- replaced: a column CHECK goes with its column when the column is
-- dropped, and the table is never dropped (deliveries reference it ON
-- DELETE CASCADE).
ALTER TABLE webhook_endpoints ADD COLUMN type_new TEXT NOT NULL DEFAULT 'webhook'
	CHECK (type_new IN ('webhook', 'nats', 'amqp', 'kafka'));
UPDATE webhook_endpoints SET type_new = type;
ALTER TABLE webhook_endpoints DROP COLUMN type;
ALTER TABLE webhook_endpoints RENAME COLUMN type_new TO type;
