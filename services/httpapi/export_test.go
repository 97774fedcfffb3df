package httpapi

import "time"

// SetReauthEvery makes live streams check their caller again every d, for
// tests; it returns the previous interval.
func SetReauthEvery(d time.Duration) time.Duration {
	return time.Duration(reauthEvery.Swap(int64(d)))
}
