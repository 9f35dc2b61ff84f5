package fiscal

// SignInTx makes s number and sign inside the write transaction, as
// before issue 17: the benchmarks' baseline.
func SignInTx(s *Invoices) { s.signInTx = true }
