package signals

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/hikeshi/hikeshi/events"
)

// RuleConfig is one rule of signals.rules, or signals.default.
type RuleConfig struct {
	Name string `yaml:"name"`
	// When is a CEL expression over `signal` (a map: source, kind,
	// fingerprint, status, title, summary, severity, labels, account,
	// project, region, resource, service, group_key, reported_by,
	// customer_impact, starts_at); empty matches every signal.
	When string `yaml:"when"`
	// Drop suppresses the signal (it stays on the stream, nothing else).
	Drop     bool              `yaml:"drop"`
	Priority string            `yaml:"priority"`
	Annotate map[string]string `yaml:"annotate"` // playbook, owner, notes…
	// Route is incident, ticket, triage or none.
	Route    string         `yaml:"route"`
	Incident IncidentAction `yaml:"incident"`
	// GroupBy is a CEL expression giving the group key (default: the
	// producer's group key).
	GroupBy   string     `yaml:"group_by"`
	RateLimit *RateLimit `yaml:"rate_limit"`
}

// IncidentAction says what incident a routed signal declares.
type IncidentAction struct {
	Service      string `yaml:"service" json:"service,omitempty"`
	Severity     string `yaml:"severity" json:"severity,omitempty"` // SEV1…SEV5; default from the signal
	Confidential bool   `yaml:"confidential" json:"confidential,omitempty"`
}

// RateLimit: more than Max occurrences of one fingerprint per Window are
// counted but not notified again.
type RateLimit struct {
	Max    int           `yaml:"max" json:"max"`
	Window time.Duration `yaml:"window" json:"window"`
}

// Routes.
const (
	RouteIncident = "incident"
	RouteTicket   = "ticket"
	RouteTriage   = "triage"
	RouteNone     = "none"
)

// Decision is what the rules made of one signal.
type Decision struct {
	Rules       []string          `json:"rules"` // every rule that matched, in order
	Drop        bool              `json:"drop,omitempty"`
	Priority    string            `json:"priority,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Route       string            `json:"route"`
	Incident    IncidentAction    `json:"incident,omitzero"`
	GroupKey    string            `json:"group_key"`
	RateLimit   *RateLimit        `json:"rate_limit,omitempty"`
	// Flagged says why the default was used instead of the rules (an
	// evaluation error): the signal is never lost for a broken rule.
	Flagged string `json:"flagged,omitempty"`
}

type rule struct {
	RuleConfig
	when, groupBy cel.Program
}

// Rules are compiled rules.
type Rules struct {
	rules []rule
	def   rule
}

var celEnv = func() *cel.Env {
	env, err := cel.NewEnv(cel.Variable("signal", cel.MapType(cel.StringType, cel.DynType)))
	if err != nil {
		panic(err)
	}
	return env
}()

// Compile checks and compiles rules; an error names the rule.
func Compile(cfgs []RuleConfig, def RuleConfig) (*Rules, error) {
	rs := &Rules{}
	for i, c := range cfgs {
		if c.Name == "" {
			c.Name = fmt.Sprintf("rule %d", i+1)
		}
		r, err := compileRule(c)
		if err != nil {
			return nil, fmt.Errorf("signals.rules[%d] (%s): %w", i, c.Name, err)
		}
		rs.rules = append(rs.rules, r)
	}
	if def.Name == "" {
		def.Name = "default"
	}
	if def.When != "" || def.Drop {
		return nil, fmt.Errorf("signals.default: when and drop do not apply to the default")
	}
	d, err := compileRule(def)
	if err != nil {
		return nil, fmt.Errorf("signals.default: %w", err)
	}
	rs.def = d
	return rs, nil
}

func compileRule(c RuleConfig) (rule, error) {
	r := rule{RuleConfig: c}
	switch c.Route {
	case "", RouteIncident, RouteTicket, RouteTriage, RouteNone:
	default:
		return r, fmt.Errorf("route %q must be incident, ticket, triage or none", c.Route)
	}
	if c.Drop && c.Route != "" {
		return r, fmt.Errorf("drop and route exclude each other")
	}
	if c.Incident.Severity != "" {
		sev, err := events.ParseSeverity(c.Incident.Severity)
		if err != nil {
			return r, fmt.Errorf("incident.severity: %w", err)
		}
		r.Incident.Severity = string(sev)
	}
	if c.RateLimit != nil && (c.RateLimit.Max < 1 || c.RateLimit.Window <= 0) {
		return r, fmt.Errorf("rate_limit needs max >= 1 and a window")
	}
	var err error
	if c.When != "" {
		if r.when, err = program(c.When, cel.BoolType); err != nil {
			return r, fmt.Errorf("when: %w", err)
		}
	}
	if c.GroupBy != "" {
		if r.groupBy, err = program(c.GroupBy, cel.StringType); err != nil {
			return r, fmt.Errorf("group_by: %w", err)
		}
	}
	return r, nil
}

func program(expr string, want *cel.Type) (cel.Program, error) {
	ast, iss := celEnv.Compile(expr)
	if iss != nil && iss.Err() != nil {
		return nil, iss.Err()
	}
	if !ast.OutputType().IsExactType(want) && !ast.OutputType().IsExactType(cel.DynType) {
		return nil, fmt.Errorf("%q gives %s, want %s", expr, ast.OutputType(), want)
	}
	return celEnv.Program(ast, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(100_000))
}

// activation is the signal as rules see it.
func activation(s *events.Signal) map[string]any {
	labels := s.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	act := activations.Get().(map[string]any)
	sig := act["signal"].(map[string]any)
	sig["source"], sig["kind"], sig["fingerprint"], sig["status"] = s.Source, s.Kind, s.Fingerprint, s.Status
	sig["title"], sig["summary"], sig["severity"], sig["labels"] = s.Title, s.Summary, s.Severity, labels
	sig["account"], sig["project"], sig["region"], sig["resource"] = s.Account, s.Project, s.Region, s.Resource
	sig["service"], sig["group_key"], sig["reported_by"] = s.Service, s.GroupKey, s.ReportedBy
	sig["customer_impact"], sig["starts_at"] = s.CustomerImpact, s.StartsAt
	return act
}

// activations are reused: every stored signal is evaluated, and building
// its maps cost more than most rules.
var activations = sync.Pool{New: func() any {
	return map[string]any{"signal": make(map[string]any, 17)}
}}

// Evaluate runs the rules in order. Every matching rule contributes what
// is not yet set (priority, annotations, rate limit, group key); the first
// matching rule that drops or routes decides, and evaluation stops there.
// Without such a rule the default routes. An evaluation error stops at
// once and routes by the default, flagged.
func (rs *Rules) Evaluate(s *events.Signal) Decision {
	d := Decision{GroupKey: s.GroupKey, Annotations: map[string]string{}}
	act := activation(s)
	defer activations.Put(act)
	for _, r := range rs.rules {
		if r.when != nil {
			out, _, err := r.when.Eval(act)
			if err != nil && missingKey(err) {
				continue // a label the signal lacks does not match
			}
			if err != nil {
				d.Flagged = fmt.Sprintf("rule %q: %v", r.Name, err)
				break
			}
			if match, ok := out.Value().(bool); !ok || !match {
				continue
			}
		}
		d.Rules = append(d.Rules, r.Name)
		if err := d.merge(&r, act); err != nil {
			d.Flagged = fmt.Sprintf("rule %q: %v", r.Name, err)
			break
		}
		if r.Drop {
			d.Drop = true
			return d
		}
		if r.Route != "" {
			d.Route = r.Route
			d.Incident = r.Incident
			return d
		}
	}
	if err := d.merge(&rs.def, act); err != nil && d.Flagged == "" {
		d.Flagged = fmt.Sprintf("default: %v", err)
	}
	d.Route, d.Incident = rs.defaultRoute(s)
	return d
}

// defaultRoute is where signals.default sends s: its route, or none
// (triage for an escalation) when it names none.
func (rs *Rules) defaultRoute(s *events.Signal) (string, IncidentAction) {
	switch {
	case rs.def.Route != "":
		return rs.def.Route, rs.def.Incident
	case s.Kind == "escalation":
		return RouteTriage, rs.def.Incident
	}
	return RouteNone, rs.def.Incident
}

func (d *Decision) merge(r *rule, act map[string]any) error {
	if d.Priority == "" {
		d.Priority = r.Priority
	}
	for k, v := range r.Annotate {
		if _, set := d.Annotations[k]; !set {
			d.Annotations[k] = v
		}
	}
	if d.RateLimit == nil {
		d.RateLimit = r.RateLimit
	}
	if r.groupBy != nil {
		out, _, err := r.groupBy.Eval(act)
		if err != nil {
			return fmt.Errorf("group_by: %w", err)
		}
		if g, ok := out.Value().(string); ok && strings.TrimSpace(g) != "" {
			d.GroupKey = keyspace(act["signal"].(map[string]any)) + "/" + g
		}
	}
	return nil
}

// keyspace is where a rule's group key lives: under the signal's source
// (and the generic endpoint for its signals, whose source is the
// producer's word), so a rule never gathers two sources into one incident.
func keyspace(sig map[string]any) string {
	src, _ := sig["source"].(string)
	if key, _ := sig["group_key"].(string); strings.HasPrefix(key, "generic/"+src+"/") {
		return "generic/" + src
	}
	return src
}

// missingKey: CEL fails signal.labels["env"] when the label is absent;
// that is a rule that does not apply, not a broken rule.
func missingKey(err error) bool { return strings.HasPrefix(err.Error(), "no such key") }
