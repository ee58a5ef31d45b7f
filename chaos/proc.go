package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// proc is one child process of the boost binary. It can be SIGKILLed and
// started again on the same arguments, environment and log file. A process
// that exits without being told to is counted as a crash and restarted
// after a second, as an orchestrator would.
type proc struct {
	name    string
	path    string
	args    []string
	env     []string
	logPath string
	// quietStdout sends stdout nowhere: `boost dev` prints its default keys
	// there, and no key may reach a log file.
	quietStdout bool
	// ready reports whether the process serves; nil means started is ready.
	ready func(ctx context.Context) error
	log   *slog.Logger

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	down    bool // stopped or killed by the suite
	crashes int
	lastErr string
}

// start launches the process.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.startLocked()
}

func (p *proc) startLocked() error {
	if p.cmd != nil && !isClosed(p.exited) {
		return fmt.Errorf("%s is already running", p.name)
	}
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("opening log of %s: %w", p.name, err)
	}
	fmt.Fprintf(f, "=== chaos: starting %s at %s\n", p.name, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = p.env
	cmd.Stderr = f
	if !p.quietStdout {
		cmd.Stdout = f
	}
	// Its own process group, so a ctrl-C on the suite reaches the suite
	// only (it stops its children itself); killed if the suite dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("starting %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited, p.down = cmd, exited, false
	go p.wait(cmd, f, exited)
	return nil
}

// wait reaps the process and restarts it if it died on its own.
func (p *proc) wait(cmd *exec.Cmd, f *os.File, exited chan struct{}) {
	err := cmd.Wait()
	fmt.Fprintf(f, "=== chaos: %s exited at %s: %v\n", p.name, time.Now().UTC().Format(time.RFC3339Nano), exitText(err))
	f.Close()
	p.mu.Lock()
	crashed := !p.down && p.cmd == cmd
	if crashed {
		p.crashes++
		p.lastErr = exitText(err)
	}
	close(exited)
	p.mu.Unlock()
	if !crashed {
		return
	}
	p.log.Warn("process exited on its own; restarting it in 1s", "process", p.name, "exit", exitText(err))
	time.Sleep(time.Second)
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.down && p.cmd == cmd {
		if err := p.startLocked(); err != nil {
			p.log.Error("restarting crashed process", "process", p.name, "err", err)
		}
	}
}

// kill sends SIGKILL to the process and waits until it is gone.
func (p *proc) kill() error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.down = true
	p.mu.Unlock()
	if cmd == nil || isClosed(exited) {
		return fmt.Errorf("%s is not running", p.name)
	}
	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("killing %s: %w", p.name, err)
	}
	<-exited
	return nil
}

// stop asks the process to shut down (SIGTERM) and kills it after grace.
func (p *proc) stop(grace time.Duration) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.down = true
	p.mu.Unlock()
	if cmd == nil || isClosed(exited) {
		return
	}
	_ = syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
}

// pid is the running process id, 0 when down.
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || isClosed(p.exited) {
		return 0
	}
	return p.cmd.Process.Pid
}

// exitedChan is closed when the current run of the process ends.
func (p *proc) exitedChan() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exited
}

// crashCount is how many times the process exited without being told to.
func (p *proc) crashCount() (int, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.crashes, p.lastErr
}

// waitReady polls ready until it succeeds, the process exits or timeout.
func (p *proc) waitReady(ctx context.Context, timeout time.Duration) error {
	if p.ready == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		last = p.ready(pctx)
		pcancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready within %s (see %s): %w", p.name, timeout, p.logPath, last)
		case <-p.exitedChan():
			if n, why := p.crashCount(); n > 0 {
				return fmt.Errorf("%s exited while starting: %s (see %s)", p.name, why, p.logPath)
			}
			return fmt.Errorf("%s stopped while starting (see %s)", p.name, p.logPath)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func isClosed(c chan struct{}) bool {
	if c == nil {
		return true
	}
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// httpReady is a readiness probe: GET url answers 200.
func httpReady(url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// both is a probe that passes once a and b do.
func both(a, b func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := a(ctx); err != nil {
			return err
		}
		return b(ctx)
	}
}

// tcpReady is a readiness probe: addr accepts a connection.
func tcpReady(addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}
