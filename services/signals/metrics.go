package signals

import (
	"github.com/prometheus/client_golang/prometheus"
)

// register exports the module's counters: what producers sent, what was
// new, what the stream already held, and what the projector decided.
func (m *module) register(metrics prometheus.Registerer) error {
	counter := func(name, help string, v func() int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "hikeshi_signals_" + name, Help: help},
			func() float64 { return float64(v()) })
	}
	for _, c := range append([]prometheus.Collector{
		counter("received_total", "Signals in accepted deliveries.", func() int64 { r, _ := m.ingest.Counts(); return r }),
		counter("stored_total", "Signals stored on the SIGNALS stream for the first time.", func() int64 { _, n := m.ingest.Counts(); return n }),
		counter("duplicate_total", "Accepted signals the stream already held (HA peers, retries within its dedup window).",
			func() int64 { r, n := m.ingest.Counts(); return r - n }),
	}, m.proj.Collectors()...) {
		if err := metrics.Register(c); err != nil {
			return err
		}
	}
	return nil
}
