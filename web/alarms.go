package web

// AddAlarms registers a source of alarm lines (records being lost, the
// disk nearly full) that the home page shows the network manager and the
// DSL at the top, as fixed sentences of the feature's own making, never
// request text. fn is called on each visit and must be quick (no I/O).
func (s *Server) AddAlarms(fn func() []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.alarms = append(s.alarms, fn)
}

// alarmLines collects the registered sources' lines for role: the network
// manager keeps the system running and the DSL needs to know when records
// are missing; reception can do nothing about either.
func (s *Server) alarmLines(role string) []string {
	if role != RoleNetwork && role != RoleDSL {
		return nil
	}
	s.mu.Lock()
	fns := append([]func() []string(nil), s.alarms...)
	s.mu.Unlock()
	var out []string
	for _, fn := range fns {
		out = append(out, fn()...)
	}
	return out
}
