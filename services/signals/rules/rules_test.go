package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/events"
)

// Typed rules still evaluate over the signal as before: a missing label
// does not match, timestamps compare, labels iterate.
func TestTypedRulesEvaluate(t *testing.T) {
	rs, err := Compile([]Rule{
		{Name: "prod", When: `signal.labels["env"] == "prod"`, Route: RouteIncident},
		{Name: "old", When: `signal.starts_at < timestamp("2020-01-01T00:00:00Z")`, Drop: true},
		{Name: "any-team", When: `signal.labels.exists(k, k == "team")`, Route: RouteNone, GroupBy: `signal.labels["team"]`},
	}, Rule{Route: RouteTriage})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		sig  events.Signal
		want string
	}{
		{events.Signal{Source: "am", Labels: map[string]string{"env": "prod"}, StartsAt: at}, "prod incident"},
		{events.Signal{Source: "am", StartsAt: at.AddDate(-10, 0, 0)}, "old drop"},
		{events.Signal{Source: "am", Labels: map[string]string{"team": "db"}, StartsAt: at}, "any-team none am/db"},
		{events.Signal{Source: "am", StartsAt: at}, " triage"},
	} {
		got := rs.Evaluate(&tc.sig)
		s := strings.Join(got.Rules, ",") + " " + got.Route
		if got.Drop {
			s = strings.Join(got.Rules, ",") + " drop"
		}
		if got.GroupKey != "" {
			s += " " + got.GroupKey
		}
		if s != tc.want || got.Flagged != "" {
			t.Errorf("got %q (flagged %q), want %q", s, got.Flagged, tc.want)
		}
	}
}
