package ingest

import (
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/hikeshi/hikeshi/events"
)

// amPayload is Alertmanager's webhook (version 4); Grafana's webhook
// contact point sends the same shape with a few more fields per alert.
type amPayload struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []amAlert         `json:"alerts"`
	// Grafana only: the organisation whose rules fired (a number).
	OrgID json.Number `json:"orgId"`
}

type amAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
	// Grafana only.
	SilenceURL   string `json:"silenceURL"`
	DashboardURL string `json:"dashboardURL"`
	PanelURL     string `json:"panelURL"`
}

// maxAlerts bounds one delivery (Alertmanager's max_alerts is 0 =
// unlimited by default, but a body is bounded anyway).
const maxAlerts = 10_000

// parseAlertmanager normalises a webhook v4 payload (source alertmanager)
// or a Grafana webhook payload (source grafana).
func parseAlertmanager(b []byte, source string) ([]events.Signal, error) {
	var p amPayload
	if !scanAlertmanager(b, &p) {
		p = amPayload{} // encoding/json would decode over what the scanner read
		if err := decode(b, &p, false); err != nil {
			return nil, err
		}
	}
	return p.signals(source)
}

// amPayloadFields and amAlertFields are the names encoding/json matches.
var amPayloadFields, amAlertFields = jsonNames(amPayload{}), jsonNames(amAlert{})

// scanAlertmanager reads b as encoding/json would, or reports false (see
// wire.go); p must be zero.
func scanAlertmanager(b []byte, p *amPayload) bool {
	s := scanner{b: b, text: string(b)}
	ok := s.fields(amPayloadFields, func(key string) bool {
		switch key {
		case "version":
			return s.str(&p.Version)
		case "groupKey":
			return s.str(&p.GroupKey)
		case "status":
			return s.str(&p.Status)
		case "receiver":
			return s.str(&p.Receiver)
		case "groupLabels":
			return s.labels(&p.GroupLabels)
		case "commonLabels":
			return s.labels(&p.CommonLabels)
		case "commonAnnotations":
			return s.labels(&p.CommonAnnotations)
		case "externalURL":
			return s.str(&p.ExternalURL)
		case "orgId":
			return s.num(&p.OrgID)
		case "alerts":
			p.Alerts = []amAlert{}
			return s.array(func() bool {
				p.Alerts = append(p.Alerts, amAlert{})
				return s.amAlert(&p.Alerts[len(p.Alerts)-1])
			})
		}
		return false // a field added to amPayload but not here
	})
	return ok && s.end()
}

func (s *scanner) amAlert(a *amAlert) bool {
	return s.fields(amAlertFields, func(key string) bool {
		switch key {
		case "status":
			return s.str(&a.Status)
		case "labels":
			return s.labels(&a.Labels)
		case "annotations":
			return s.labels(&a.Annotations)
		case "startsAt":
			return s.time(&a.StartsAt)
		case "endsAt":
			return s.time(&a.EndsAt)
		case "generatorURL":
			return s.str(&a.GeneratorURL)
		case "fingerprint":
			return s.str(&a.Fingerprint)
		case "silenceURL":
			return s.str(&a.SilenceURL)
		case "dashboardURL":
			return s.str(&a.DashboardURL)
		case "panelURL":
			return s.str(&a.PanelURL)
		}
		return false
	})
}

// jsonNames lists the JSON names of struct v's fields.
func jsonNames(v any) []string {
	t := reflect.TypeOf(v)
	names := make([]string, t.NumField())
	for i := range names {
		f := t.Field(i)
		if names[i], _, _ = strings.Cut(f.Tag.Get("json"), ","); names[i] == "" {
			names[i] = f.Name
		}
	}
	return names
}

// signals checks the payload and normalises its alerts.
func (p *amPayload) signals(source string) ([]events.Signal, error) {
	if source == "alertmanager" && p.Version != "4" {
		return nil, bad("version: %q is not supported (want \"4\")", p.Version)
	}
	if source == "grafana" && p.Version == "4" && p.OrgID == "" {
		return nil, bad("orgId: is required (Grafana sends it; version \"4\" without it is Alertmanager's webhook)")
	}
	if len(p.Alerts) == 0 {
		return nil, bad("alerts: empty")
	}
	if len(p.Alerts) > maxAlerts {
		return nil, bad("alerts: more than %d", maxAlerts)
	}
	if p.GroupKey == "" && source == "alertmanager" {
		return nil, bad("groupKey: is required")
	}
	groupKey := p.groupKey(source, p.GroupKey)
	byRule := source == "grafana" && p.keyCarriesNothing()
	out := make([]events.Signal, 0, len(p.Alerts))
	for i, a := range p.Alerts {
		switch {
		case a.Fingerprint == "":
			return nil, bad("alerts[%d].fingerprint: is required", i)
		case a.Status != events.SignalFiring && a.Status != events.SignalResolved:
			return nil, bad("alerts[%d].status: %q must be firing or resolved", i, a.Status)
		case a.StartsAt.IsZero():
			return nil, bad("alerts[%d].startsAt: is required", i)
		}
		title := first(a.Labels["alertname"], a.Annotations["summary"], "alert "+a.Fingerprint)
		s := events.Signal{
			Source: source, Kind: "alert", Fingerprint: a.Fingerprint, Status: a.Status,
			Title:    title,
			Summary:  amSummary(title, a.Annotations),
			Severity: severity(a.Labels["severity"]),
			Labels:   a.Labels,
			Account:  first(a.Labels["account"], a.Labels["aws_account"]),
			Project:  first(a.Labels["project"], a.Labels["gcp_project"]),
			Region:   a.Labels["region"],
			Resource: first(a.Labels["resource"], a.Labels["instance"]),
			Service:  a.Labels["service"],
			StartsAt: a.StartsAt.UTC(),
			GroupKey: groupKey,
		}
		if byRule {
			s.GroupKey = p.groupKey(source, "rule/"+grafanaRule(&a))
		}
		if a.Status == events.SignalResolved && !a.EndsAt.IsZero() && a.EndsAt.Year() > 1 {
			s.EndsAt = a.EndsAt.UTC()
		}
		s.Links = links(
			"runbook", a.Annotations["runbook_url"],
			"generator", a.GeneratorURL,
			"dashboard", a.DashboardURL,
			"panel", a.PanelURL,
			"silence", a.SilenceURL,
		)
		out = append(out, s)
	}
	return out, nil
}

// groupKey namespaces a group by source, sender and receiver: two
// Alertmanagers (or two Grafana instances or organisations) whose routes
// build the same groupKey never share a group, nor do two receivers of one.
func (p *amPayload) groupKey(source, group string) string {
	sender := strings.TrimRight(p.ExternalURL, "/")
	if source == "grafana" {
		return source + "/" + sender + "/org/" + p.OrgID.String() + "/" + p.Receiver + "/" + group
	}
	return source + "/" + sender + "/" + p.Receiver + "/" + group
}

// keyCarriesNothing: a notification policy grouping by no label (Grafana's
// "{}:{}") puts every alert of the receiver in one group.
func (p *amPayload) keyCarriesNothing() bool {
	return len(p.GroupLabels) == 0 && (p.GroupKey == "" || strings.HasSuffix(p.GroupKey, ":{}"))
}

// grafanaRuleLabel is the label Grafana gives every alert of a rule.
const grafanaRuleLabel = "__alert_rule_uid__"

// grafanaRule names the Grafana rule that fired a: its UID from the label,
// the silence link's matcher (Grafana 10+) or the rule's page
// (…/alerting/grafana/<uid>/view, or …/alerting/<uid>/edit before Grafana
// 9); else its folder and title, else the alert itself.
func grafanaRule(a *amAlert) string {
	if uid := a.Labels[grafanaRuleLabel]; uid != "" {
		return uid
	}
	if u, err := url.Parse(a.SilenceURL); err == nil {
		for _, m := range u.Query()["matcher"] {
			if uid, ok := strings.CutPrefix(m, grafanaRuleLabel+"="); ok && uid != "" {
				return uid
			}
		}
	}
	if u, err := url.Parse(a.GeneratorURL); err == nil {
		_, rest, ok := strings.Cut(u.Path, "/alerting/")
		rest = strings.TrimPrefix(rest, "grafana/")
		if uid, page, _ := strings.Cut(rest, "/"); ok && uid != "" && (page == "view" || page == "edit") {
			return uid
		}
	}
	if name := a.Labels["alertname"]; name != "" {
		return a.Labels["grafana_folder"] + "/" + name
	}
	return "alert/" + a.Fingerprint
}

// amSummary keeps both the summary and the description annotations (each
// once, and not when it only repeats the title).
func amSummary(title string, ann map[string]string) string {
	sum, desc := ann["summary"], ann["description"]
	if sum == title {
		sum = ""
	}
	if desc == title || desc == sum {
		desc = ""
	}
	if sum != "" && desc != "" {
		return sum + "\n\n" + desc
	}
	return sum + desc
}

// severity maps the usual label values onto the signal scale.
func severity(v string) string {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "critical", "crit", "fatal", "emergency", "page", "p1", "sev1":
		return "critical"
	case "high", "error", "err", "major", "p2", "sev2":
		return "high"
	case "medium", "warning", "warn", "p3", "sev3":
		return "medium"
	case "low", "minor", "p4", "sev4":
		return "low"
	}
	return "info"
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// links pairs titles and URLs, keeping only http(s) URLs.
func links(pairs ...string) []events.SignalLink {
	var out []events.SignalLink
	for i := 0; i+1 < len(pairs); i += 2 {
		u := pairs[i+1]
		if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
			out = append(out, events.SignalLink{Title: pairs[i], URL: u})
		}
	}
	return out
}
