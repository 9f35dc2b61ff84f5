package observe

// DeliveriesAfter is the tailer's query for delivered rows after its
// cursor, for the query-plan test.
const DeliveriesAfter = deliveriesAfter
