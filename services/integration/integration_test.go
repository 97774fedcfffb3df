package integration_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integration"
	"github.com/hikeshi/hikeshi/services/projection"
)

// Only answers that retrying cannot change dead-letter an event: rate
// limits, outages and credentials an operator can fix are retried.
// An adapter's refusal for good dead-letters; its other errors are retried.
func TestRefused(t *testing.T) {
	if err := integration.Refused(refusal{permanent: true}); !errors.Is(err, projection.ErrPermanent) || !strings.Contains(err.Error(), "refusal") {
		t.Errorf("a permanent refusal: %v", err)
	}
	wrapped := fmt.Errorf("jira comment: %w", refusal{})
	if err := integration.Refused(wrapped); errors.Is(err, projection.ErrPermanent) || err != wrapped {
		t.Errorf("a passing refusal: %v", err)
	}
	if integration.Refused(nil) != nil {
		t.Error("nil")
	}
}

type refusal struct{ permanent bool }

func (r refusal) Error() string   { return "refusal" }
func (r refusal) Permanent() bool { return r.permanent }

func TestWhatMayBeSaid(t *testing.T) {
	open := incident.State{ID: "x", Service: "payments"}
	secret := incident.State{ID: "y", Service: "identity", Confidential: true, Drill: true}
	if integration.Text(open, "rolled back") != "rolled back" || integration.Text(secret, "rolled back") != integration.Withheld ||
		integration.Text(secret, " ") != " " {
		t.Error("Text")
	}
	if integration.Service(open) != "payments" || integration.Service(secret) == "identity" {
		t.Error("Service")
	}
	if integration.Marker(open) != "" || integration.Marker(secret) != "[DRILL] " {
		t.Error("Marker")
	}
	if got := integration.TimelineURL("https://hub.test/", "x"); got != "https://hub.test/incidents/x" {
		t.Errorf("TimelineURL %q", got)
	}
}
