package ingest

import (
	"bytes"
	"slices"
	"strings"
	"time"

	"github.com/hikeshi/hikeshi/events"
)

// genericSignal is the documented JSON any producer may send to
// POST /api/v1/signals (one object, or an array of them): the normalised
// signal, the data of io.hikeshi.signal.received, field for field, so that
// what `hikeshi rules test` prints can be sent back as it is.
type genericSignal struct {
	Source      string              `json:"source"`
	Kind        string              `json:"kind"` // alert (default), finding or escalation
	Fingerprint string              `json:"fingerprint"`
	Title       string              `json:"title"`
	Summary     string              `json:"summary"`
	Severity    string              `json:"severity"`
	Status      string              `json:"status"`
	Labels      map[string]string   `json:"labels"`
	Links       []events.SignalLink `json:"links"`
	Account     string              `json:"account"`
	Project     string              `json:"project"`
	Region      string              `json:"region"`
	Resource    string              `json:"resource"`
	Service     string              `json:"service"`
	StartsAt    time.Time           `json:"starts_at"`
	EndsAt      time.Time           `json:"ends_at"`
	Revision    string              `json:"revision"`
	GroupKey    string              `json:"group_key"`
	// Escalations.
	ReportedBy     string `json:"reported_by"`
	CustomerImpact string `json:"customer_impact"`
}

// signalKinds are the kinds a signal may have; the kind is a subject token.
var signalKinds = []string{"alert", "finding", "escalation"}

func parseGeneric(b []byte) ([]events.Signal, error) {
	var in []genericSignal
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) > 0 && t[0] == '[' {
		if err := decodeAt(b, &in, true, "signals"); err != nil {
			return nil, err
		}
	} else {
		var one genericSignal
		if err := decode(b, &one, true); err != nil {
			return nil, err
		}
		in = []genericSignal{one}
	}
	if len(in) == 0 || len(in) > maxAlerts {
		return nil, bad("expected 1 to %d signals", maxAlerts)
	}
	out := make([]events.Signal, len(in))
	for i, g := range in {
		if g.Severity == "" {
			return nil, bad("signals[%d].severity: is required", i)
		}
		if g.Status == "" {
			g.Status = events.SignalFiring
		}
		if g.Kind == "" {
			g.Kind = "alert"
		}
		if !slices.Contains(signalKinds, g.Kind) {
			return nil, bad("signals[%d].kind: %q must be one of %s", i, g.Kind, strings.Join(signalKinds, ", "))
		}
		out[i] = events.Signal{
			Source: g.Source, Kind: g.Kind, Fingerprint: g.Fingerprint, Status: g.Status,
			Title: g.Title, Summary: g.Summary, Severity: g.Severity, Labels: g.Labels,
			Account: g.Account, Project: g.Project, Region: g.Region, Resource: g.Resource,
			Service: g.Service, Links: g.Links, StartsAt: g.StartsAt.UTC(), Revision: g.Revision,
			// Under the generic endpoint and the producer's name: a key
			// copied from another source's signal never joins its group.
			GroupKey:   "generic/" + g.Source + "/" + first(g.GroupKey, g.Fingerprint),
			ReportedBy: g.ReportedBy, CustomerImpact: g.CustomerImpact,
		}
		if !g.EndsAt.IsZero() {
			out[i].EndsAt = g.EndsAt.UTC()
		}
	}
	return out, nil
}

func parseEscalation(b []byte) ([]events.Signal, error) {
	var e events.Escalation
	if err := decode(b, &e, true); err != nil {
		return nil, err
	}
	s, err := e.Signal()
	if err != nil {
		return nil, bad("%v", err)
	}
	return []events.Signal{s}, nil
}
