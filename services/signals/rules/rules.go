// Package rules evaluates the signals: rules (CEL expressions over a
// signal) into a Decision: drop, annotate, rate-limit, group and route.
package rules

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/incident"
)

// Rule is one rule of signals.rules, or signals.default.
type Rule struct {
	Name string `yaml:"name"`
	// When is a boolean CEL expression over `signal` (the fields of
	// signalFields); empty matches every signal. It is type-checked at
	// load: an unknown field or a result that is not a boolean is an error.
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

type compiled struct {
	Rule
	// where names the rule in errors: signals.rules[2] (page).
	where         string
	when, groupBy cel.Program
}

// Set is a compiled rule set: signals.rules and signals.default.
type Set struct {
	rules []compiled
	def   compiled
}

// signalFields are the fields of `signal` as rules see it (see
// activation), with their CEL types: the checker refuses any other field.
var signalFields = map[string]*cel.Type{
	"source": cel.StringType, "kind": cel.StringType, "fingerprint": cel.StringType, "status": cel.StringType,
	"title": cel.StringType, "summary": cel.StringType, "severity": cel.StringType,
	"labels":  cel.MapType(cel.StringType, cel.StringType),
	"account": cel.StringType, "project": cel.StringType, "region": cel.StringType, "resource": cel.StringType,
	"service": cel.StringType, "group_key": cel.StringType, "reported_by": cel.StringType,
	"customer_impact": cel.StringType, "starts_at": cel.TimestampType,
}

// signalTypeName is the CEL object type of `signal`.
const signalTypeName = "hikeshi.Signal"

// signalProvider declares the object type of `signal` to the checker. Its
// fields have no accessors, so at run time `signal` stays the plain map
// activation builds, read like any map.
type signalProvider struct{ *types.Registry }

func (p signalProvider) FindStructType(name string) (*types.Type, bool) {
	if name == signalTypeName {
		return types.NewTypeTypeWithParam(types.NewObjectType(signalTypeName)), true
	}
	return p.Registry.FindStructType(name)
}

func (p signalProvider) FindStructFieldNames(name string) ([]string, bool) {
	if name == signalTypeName {
		return slices.Sorted(maps.Keys(signalFields)), true
	}
	return p.Registry.FindStructFieldNames(name)
}

func (p signalProvider) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	if name != signalTypeName {
		return p.Registry.FindStructFieldType(name, field)
	}
	t, ok := signalFields[field]
	if !ok {
		return nil, false
	}
	return &types.FieldType{Type: t}, true
}

var celEnv = func() *cel.Env {
	reg, err := types.NewRegistry()
	if err != nil {
		panic(err)
	}
	env, err := cel.NewEnv(cel.CustomTypeProvider(signalProvider{reg}),
		cel.Variable("signal", cel.ObjectType(signalTypeName)))
	if err != nil {
		panic(err)
	}
	return env
}()

// Compile checks and compiles rules; an error names the rule.
func Compile(cfgs []Rule, def Rule) (*Set, error) {
	rs := &Set{}
	for i, c := range cfgs {
		if c.Name == "" {
			c.Name = fmt.Sprintf("rule %d", i+1)
		}
		r, err := compileRule(c, fmt.Sprintf("signals.rules[%d] (%s)", i, c.Name))
		if err != nil {
			return nil, err
		}
		rs.rules = append(rs.rules, r)
	}
	if def.Name == "" {
		def.Name = "default"
	}
	if def.When != "" || def.Drop {
		return nil, fmt.Errorf("signals.default: when and drop do not apply to the default")
	}
	d, err := compileRule(def, "signals.default")
	if err != nil {
		return nil, err
	}
	rs.def = d
	return rs, nil
}

// Uses names the first rule (or the default) that routes to route, "" if
// none does.
func (rs *Set) Uses(route string) string {
	for _, r := range append(rs.rules, rs.def) {
		if r.Route == route {
			return r.where
		}
	}
	return ""
}

func compileRule(c Rule, where string) (compiled, error) {
	r, err := checkRule(c)
	if err != nil {
		return r, fmt.Errorf("%s: %w", where, err)
	}
	r.where = where
	return r, nil
}

func checkRule(c Rule) (compiled, error) {
	r := compiled{Rule: c}
	switch c.Route {
	case "", RouteIncident, RouteTicket, RouteTriage, RouteNone:
	default:
		return r, fmt.Errorf("route %q must be incident, ticket, triage or none", c.Route)
	}
	if c.Drop && c.Route != "" {
		return r, fmt.Errorf("drop and route exclude each other")
	}
	if c.Incident != (IncidentAction{}) && c.Route != RouteIncident {
		return r, fmt.Errorf("incident: applies only with route: incident")
	}
	var err error
	if r.Incident, err = checkIncident(c.Incident); err != nil {
		return r, err
	}
	if c.RateLimit != nil && (c.RateLimit.Max < 1 || c.RateLimit.Window <= 0) {
		return r, fmt.Errorf("rate_limit needs max >= 1 and a window")
	}
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

// checkIncident refuses incident defaults a declaration would refuse, by
// the declaration's own checks, and normalises the severity.
func checkIncident(a IncidentAction) (IncidentAction, error) {
	if a.Severity != "" {
		sev, err := events.ParseSeverity(a.Severity)
		if err != nil {
			return a, fmt.Errorf("incident.severity: %w", err)
		}
		a.Severity = string(sev)
	}
	if a.Service != "" {
		err := incident.Declare{Title: "check", Service: a.Service, Severity: "SEV5", DeclaredBy: "signals"}.Validate()
		var ve *incident.ValidationError
		if errors.As(err, &ve) {
			return a, fmt.Errorf("incident.%s: %s", ve.Field, ve.Message)
		}
		if err != nil {
			return a, fmt.Errorf("incident.service: %w", err)
		}
	}
	return a, nil
}

// program compiles and type-checks expr, whose result must be of type
// want: a field `signal` lacks, or a result of another type, is an error.
func program(expr string, want *cel.Type) (cel.Program, error) {
	ast, iss := celEnv.Compile(expr)
	if iss != nil && iss.Err() != nil {
		return nil, iss.Err()
	}
	if got := ast.OutputType(); !got.IsExactType(want) {
		return nil, fmt.Errorf("%q gives %s, want %s", expr, typeName(got), typeName(want))
	}
	return celEnv.Program(ast, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(100_000))
}

// typeName names a CEL type for people: a string, a boolean, a map.
func typeName(t *cel.Type) string {
	switch {
	case t.IsExactType(cel.BoolType):
		return "a boolean"
	case t.IsExactType(cel.StringType):
		return "a string"
	case t.IsExactType(cel.DynType):
		return "a value of unknown type (convert it, e.g. string(...))"
	}
	return "type " + t.String()
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
func (rs *Set) Evaluate(s *events.Signal) Decision {
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
	d.Route, d.Incident = rs.Default(s)
	return d
}

// Default is where signals.default sends s: its route, or none
// (triage for an escalation) when it names none.
func (rs *Set) Default(s *events.Signal) (string, IncidentAction) {
	switch {
	case rs.def.Route != "":
		return rs.def.Route, rs.def.Incident
	case s.Kind == "escalation":
		return RouteTriage, rs.def.Incident
	}
	return RouteNone, rs.def.Incident
}

func (d *Decision) merge(r *compiled, act map[string]any) error {
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

// RoutedBy reports whether the rule named name drops or routes.
func (rs *Set) RoutedBy(name string) bool {
	for _, r := range rs.rules {
		if r.Name == name {
			return r.Drop || r.Route != ""
		}
	}
	return false
}

// DefaultName names the default rule in decisions.
func (rs *Set) DefaultName() string { return rs.def.Name }

// Flag adds why to the reasons the decision is flagged.
func (d *Decision) Flag(why string) {
	if d.Flagged != "" {
		why = d.Flagged + "; " + why
	}
	d.Flagged = why
}
