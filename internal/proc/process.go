package proc

import "github.com/bindguard/bindguard/internal/observed"

// Process reads one process's details as Owners reports an owner: name, executable, ids, unit,
// container, and user and group names as the process's own root names them. ok is false when
// the process no longer exists. The live event source uses it for the pid of a kernel event.
func (s *Scanner) Process(pid int) (p observed.Process, ok bool) {
	p, gone := s.readProcess(pid, newProcReader())
	if gone {
		return p, false
	}
	s.newNamer().name(&p)
	return p, true
}
