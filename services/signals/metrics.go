package signals

import (
	"context"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/telemetry"
	"github.com/prometheus/client_golang/prometheus"
)

// register exports the module's counters: what producers sent, what was
// new, what the stream already held, and what the projector decided.
func (m *module) register(metrics *telemetry.Metrics) error {
	counter := func(name, help string, v func() int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "hikeshi_signals_" + name, Help: help},
			func() float64 { return float64(v()) })
	}
	for _, c := range []prometheus.Collector{
		counter("received_total", "Signals in accepted deliveries.", func() int64 { r, _ := m.ingest.Counts(); return r }),
		counter("stored_total", "Signals stored on the SIGNALS stream for the first time.", func() int64 { _, n := m.ingest.Counts(); return n }),
		counter("duplicate_total", "Accepted signals the stream already held (HA peers, retries within its dedup window).",
			func() int64 { r, n := m.ingest.Counts(); return r - n }),
		counter("handled_total", "Stored signals the rules were evaluated over.", m.proj.handled.Load),
		counter("dropped_total", "Signals dropped by a rule.", m.proj.dropped.Load),
		counter("flagged_total", "Signals routed by the default because a rule failed or a route was not configured.", m.proj.flagged.Load),
		counter("repeated_total", "Stored signals their fingerprint had already seen (a copy after the dedup window, an older episode): ignored.", m.proj.repeated.Load),
		counter("rate_limited_total", "Occurrences over their fingerprint's rate limit: counted, not notified.", m.proj.limited.Load),
		lagCollector{m},
	} {
		if err := metrics.Registry.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// lagCollector exports the projector's hikeshi_consumer_lag beside the
// hub's projectors (it is not one of them). It describes nothing, so the
// registry accepts a second collector of the hub's metric name.
type lagCollector struct{ m *module }

var lagDesc = prometheus.NewDesc("hikeshi_consumer_lag", "Events on the stream not yet delivered to the consumer, plus those awaiting ack.", []string{"consumer"}, nil)

func (lagCollector) Describe(chan<- *prometheus.Desc) {}

func (c lagCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, c.m.lag(), Durable)
}

func (m *module) lag() float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := m.env.Bus.JS.Consumer(ctx, events.SignalStream, Durable)
	if err != nil {
		return 0
	}
	info := c.CachedInfo()
	return float64(info.NumPending) + float64(info.NumAckPending)
}
