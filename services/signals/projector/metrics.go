package projector

import (
	"context"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/prometheus/client_golang/prometheus"
)

// Collectors are the projector's metrics: what it decided, and its
// consumer's lag.
func (p *Runner) Collectors() []prometheus.Collector {
	counter := func(name, help string, v func() int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "hikeshi_signals_" + name, Help: help},
			func() float64 { return float64(v()) })
	}
	return []prometheus.Collector{
		counter("handled_total", "Stored signals the rules were evaluated over.", p.handled.Load),
		counter("dropped_total", "Signals dropped by a rule.", p.dropped.Load),
		counter("flagged_total", "Signals routed by the default because a rule failed or a route was not configured.", p.flagged.Load),
		counter("repeated_total", "Stored signals their fingerprint had already seen (a copy after the dedup window, an older episode): ignored.", p.repeated.Load),
		counter("rate_limited_total", "Occurrences over their fingerprint's rate limit: counted, not notified.", p.limited.Load),
		lagCollector{p},
	}
}

// lagCollector exports the projector's hikeshi_consumer_lag beside the
// hub's projectors (it is not one of them). It describes nothing, so the
// registry accepts a second collector of the hub's metric name.
type lagCollector struct{ p *Runner }

var lagDesc = prometheus.NewDesc("hikeshi_consumer_lag", "Events on the stream not yet delivered to the consumer, plus those awaiting ack.", []string{"consumer"}, nil)

func (lagCollector) Describe(chan<- *prometheus.Desc) {}

func (c lagCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, c.p.lag(), Durable)
}

func (p *Runner) lag() float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := p.env.JS.Consumer(ctx, events.SignalStream, Durable)
	if err != nil {
		return 0
	}
	info := c.CachedInfo()
	return float64(info.NumPending) + float64(info.NumAckPending)
}
