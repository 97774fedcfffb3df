package timeline

// SetCatchUpBatch makes a catch-up commit every n events, read in chunks
// of n, so that a test can stop one between its transactions; restore puts
// the sizes back.
func SetCatchUpBatch(n int) (restore func()) {
	oldBatch, oldChunk := catchUpBatch, decodeChunk
	catchUpBatch, decodeChunk = n, n
	return func() { catchUpBatch, decodeChunk = oldBatch, oldChunk }
}
