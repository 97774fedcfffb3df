package signals

import (
	"strings"
	"testing"

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
			_, loadErr := c.Projector.Compile()
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
