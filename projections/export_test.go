package projections

// SetBulkWindow makes bulk builds write rows after n are held, so tests
// see outcomes arrive after their rows are written.
func SetBulkWindow(n int) func() {
	w, f := bulkWindow, bulkFlush
	bulkWindow, bulkFlush = n, max(1, n/2)
	return func() { bulkWindow, bulkFlush = w, f }
}
