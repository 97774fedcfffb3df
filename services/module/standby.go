package module

import (
	"maps"
	"sync"
)

// Standby lists the parts of this process that wait for a lease another
// process holds (a projector that runs in one process at a time). /readyz
// shows them; the process stays ready, since its API serves meanwhile.
// A nil Standby records nothing.
type Standby struct {
	mu    sync.Mutex
	parts map[string]string
}

// Wait records that part waits, and why (the holder it waits for).
func (s *Standby) Wait(part, detail string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.parts == nil {
		s.parts = map[string]string{}
	}
	s.parts[part] = detail
}

// Done records that part no longer waits.
func (s *Standby) Done(part string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.parts, part)
}

// Waiting is what waits, part → detail; empty when nothing does.
func (s *Standby) Waiting() map[string]string {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.parts)
}
