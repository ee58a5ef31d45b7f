package chaos

import (
	"fmt"
	"net"
	"sync"
)

// ports hands out free loopback ports, never the same one twice in a run.
type ports struct {
	mu   sync.Mutex
	used map[int]bool
}

func (p *ports) free() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.used == nil {
		p.used = map[int]bool{}
	}
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("finding a free port: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !p.used[port] {
			p.used[port] = true
			return port, nil
		}
	}
	return 0, fmt.Errorf("finding a free port: every candidate was already handed out")
}

// many returns n free ports.
func (p *ports) many(n int) ([]int, error) {
	out := make([]int, n)
	for i := range out {
		port, err := p.free()
		if err != nil {
			return nil, err
		}
		out[i] = port
	}
	return out, nil
}
