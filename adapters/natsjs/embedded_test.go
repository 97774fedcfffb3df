package natsjs

import (
	"strings"
	"testing"
)

// A server URL may carry a login (split mode against a hub's NATS port);
// what the hub prints and logs of it never shows the password.
func TestRedactedURLHidesPassword(t *testing.T) {
	got := Redacted("nats://hikeshi-b:s3cret@hub-a:4222, nats://hub-c:4222")
	if want := "nats://hikeshi-b:xxxxx@hub-a:4222,nats://hub-c:4222"; got != want {
		t.Fatalf("Redacted = %q, want %q", got, want)
	}
	_, err := Connect(nil, "nats://hikeshi-b:s3cret@127.0.0.1:1", "test")
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("connect error shows the password or nothing: %v", err)
	}
}
