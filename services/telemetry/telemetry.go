// Package telemetry holds the hub's Prometheus metrics. Labels carry event
// types, projector names and routes only, never incident data, so nothing
// confidential can reach a metrics backend.
package telemetry

import (
	"context"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics is the hub's registry and instruments.
type Metrics struct {
	Registry      *prometheus.Registry
	appended      *prometheus.CounterVec
	handled       *prometheus.CounterVec
	failed        *prometheus.CounterVec
	HTTPRequests  *prometheus.CounterVec
	HTTPDurations *prometheus.HistogramVec
}

// New registers every instrument, plus Go runtime and process metrics.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		appended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hikeshi_events_appended_total", Help: "Events stored on the incident stream, by type.",
		}, []string{"type"}),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hikeshi_projector_handled_total", Help: "Events a projector handled.",
		}, []string{"projector"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hikeshi_projector_errors_total", Help: "Handler attempts that failed (each is retried or dead-lettered).",
		}, []string{"projector"}),
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hikeshi_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		HTTPDurations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hikeshi_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
	}
	m.Registry.MustRegister(m.appended, m.handled, m.failed, m.HTTPRequests, m.HTTPDurations,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Appended counts one stored event.
func (m *Metrics) Appended(typ string) { m.appended.WithLabelValues(typ).Inc() }

// Projector exports a projector's counters at zero from the start, so a
// rate or an alert on errors works before the first failure.
func (m *Metrics) Projector(name string) {
	m.handled.WithLabelValues(name)
	m.failed.WithLabelValues(name)
}

// Handled counts one event a projector handled.
func (m *Metrics) Handled(projector string) { m.handled.WithLabelValues(projector).Inc() }

// Failed counts one failed handler attempt.
func (m *Metrics) Failed(projector string) { m.failed.WithLabelValues(projector).Inc() }

// Consumer names a durable consumer and its stream ("" is INCIDENTS).
type Consumer struct{ Stream, Durable string }

// WatchLag exports hikeshi_consumer_lag{consumer}: events not yet
// delivered to each durable consumer, read from the server at scrape time.
func (m *Metrics) WatchLag(js jetstream.JetStream, consumers ...Consumer) {
	m.Registry.MustRegister(&lagCollector{js: js, consumers: consumers,
		desc: prometheus.NewDesc("hikeshi_consumer_lag", "Events on the stream not yet delivered to the consumer, plus those awaiting ack.", []string{"consumer"}, nil)})
}

type lagCollector struct {
	js        jetstream.JetStream
	consumers []Consumer
	desc      *prometheus.Desc
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, cc := range c.consumers {
		stream, name := cc.Stream, cc.Durable
		if stream == "" {
			stream = events.IncidentStream
		}
		cons, err := c.js.PushConsumer(ctx, stream, name)
		if err != nil {
			continue
		}
		info := cons.CachedInfo()
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(info.NumPending)+float64(info.NumAckPending), name)
	}
}
