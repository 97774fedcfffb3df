package signals

import (
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/config"
)

// A configuration whose rules cannot be checked or carried out is refused
// when it is loaded, by the hub and by `hikeshi rules test` alike, naming
// the rule and what is wrong with it.
func TestConfigErrorsNameTheRule(t *testing.T) {
	const github = "\n  github: {repo: acme/alerts, token_env: GH}"
	for _, tc := range []struct {
		name, section string
		want          []string
	}{
		{"when not boolean", `
  rules:
    - name: titles
      when: 'signal.title'
      route: incident`, []string{"signals.rules[0] (titles)", "when", "gives a string, want a boolean"}},
		{"unknown field", `
  rules:
    - name: ok
      when: 'signal.severity == "high"'
      priority: P1
    - name: typo
      when: 'signal.sevrity == "high"'
      route: incident`, []string{"signals.rules[1] (typo)", "when", "undefined field 'sevrity'"}},
		{"unknown field in group_by", `
  rules:
    - name: grouped
      group_by: 'signal.acount'`, []string{"signals.rules[0] (grouped)", "group_by", "acount"}},
		{"group_by not a string", `
  rules:
    - name: grouped
      when: 'signal.kind == "alert"'
      group_by: 'signal.labels'`, []string{"signals.rules[0] (grouped)", "group_by", "want a string"}},
		{"group_by of unknown type", `
  rules:
    - name: grouped
      group_by: 'dyn(signal.title)'`, []string{"signals.rules[0] (grouped)", "group_by", "unknown type"}},
		{"wrong operand type", `
  rules:
    - name: late
      when: 'signal.starts_at > 5'
      drop: true`, []string{"signals.rules[0] (late)", "when", "no matching overload"}},
		{"ticket without a tracker", `
  rules:
    - name: findings
      when: 'signal.kind == "finding"'
      route: ticket`, []string{"signals.rules[0] (findings)", "route ticket needs signals.github or signals.jira"}},
		{"default ticket without a tracker", `
  default: {route: ticket}`, []string{"signals.default", "route ticket needs signals.github or signals.jira"}},
		{"unknown route", `
  rules:
    - name: pager
      route: page`, []string{"signals.rules[0] (pager)", `route "page"`}},
		{"unknown severity", `
  rules:
    - name: sev
      route: incident
      incident: {severity: SEV9}`, []string{"signals.rules[0] (sev)", "incident.severity"}},
		{"service with a space", `
  rules:
    - name: svc
      route: incident
      incident: {service: "payments api"}`, []string{"signals.rules[0] (svc)", "incident.service", "one word"}},
		{"service too long", `
  default:
    route: incident
    incident: {service: ` + strings.Repeat("s", 101) + `}`, []string{"signals.default", "incident.service", "longer than 100"}},
		{"incident on another route", `
  rules:
    - name: tickets
      route: ticket
      incident: {service: cloud}` + github, []string{"signals.rules[0] (tickets)", "incident: applies only with route: incident"}},
		{"two trackers", github + "\n  jira: {base_url: https://jira.example, token_env: J, project: OPS}",
			[]string{"github or jira, not both"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := config.Parse("hikeshi.yaml", []byte("signals:"+tc.section+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			var c Config
			if _, err := f.Section(Name, &c); err != nil {
				t.Fatal(err)
			}
			_, loadErr := c.compileRules()
			_, testErr := Explain(f, "generic", []byte(`{}`))
			for _, err := range []error{loadErr, testErr} {
				if err == nil {
					t.Fatal("accepted")
				}
				for _, want := range tc.want {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error lacks %q: %v", want, err)
					}
				}
			}
			if loadErr.Error() != testErr.Error() {
				t.Errorf("rules test says %q, the hub %q", testErr, loadErr)
			}
		})
	}
}

// Typed rules still evaluate over the signal as before: a missing label
// does not match, timestamps compare, labels iterate.
func TestTypedRulesEvaluate(t *testing.T) {
	rs, err := Compile([]RuleConfig{
		{Name: "prod", When: `signal.labels["env"] == "prod"`, Route: RouteIncident},
		{Name: "old", When: `signal.starts_at < timestamp("2020-01-01T00:00:00Z")`, Drop: true},
		{Name: "any-team", When: `signal.labels.exists(k, k == "team")`, Route: RouteNone, GroupBy: `signal.labels["team"]`},
	}, RuleConfig{Route: RouteTriage})
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
