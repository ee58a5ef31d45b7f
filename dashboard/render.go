package dashboard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gamify/boost/app"
	"github.com/gamify/boost/readmodel"
)

// view is what every page template gets.
type view struct {
	Title   string
	Heading string // the page's h1; Title when empty
	Nav     string // the active navigation entry
	CSRF    string
	Signed  bool
	Project *readmodel.Project
	Org     *readmodel.Organization
	Base    string // the project's path, /dashboard/projects/{id}
	Sidebar []orgProjects
	Notice  string
	Error   string
	Version string
	Data    any
}

type orgProjects struct {
	Org      readmodel.Organization
	Projects []readmodel.Project
}

var funcs = template.FuncMap{
	// secs shows a duration given in seconds.
	"secs": func(s float64) string {
		switch {
		case s >= 3600:
			return fmt.Sprintf("%.1f h", s/3600)
		case s >= 60:
			return fmt.Sprintf("%d min %d s", int(s)/60, int(s)%60)
		}
		return fmt.Sprintf("%d s", int(s+0.5))
	},
	"when": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			return v.UTC().Format("2006-01-02 15:04:05 UTC")
		case *time.Time:
			if v == nil {
				return "—"
			}
			return v.UTC().Format("2006-01-02 15:04:05 UTC")
		}
		return ""
	},
	"ago": func(t any) string {
		var tt time.Time
		switch v := t.(type) {
		case time.Time:
			tt = v
		case *time.Time:
			if v == nil {
				return "never"
			}
			tt = *v
		}
		return ago(time.Since(tt))
	},
	"str": func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	},
	"pretty": prettyJSON,
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"pct": func(f float64) string { return fmt.Sprintf("%.1f%%", f*100) },
	"money": func(cents int64) string {
		sign := ""
		if cents < 0 {
			sign, cents = "-", -cents
		}
		return fmt.Sprintf("%s%s.%02d", sign, thousands(cents/100), cents%100)
	},
	"num": func(n int64) string { return thousands(n) },
	"rate": func(f float64) string {
		if f < 10 {
			return fmt.Sprintf("%.1f", f)
		}
		return thousands(int64(f + 0.5))
	},
	"add":    func(a, b int) int { return a + b },
	"list":   func(xs ...any) []any { return xs },
	"mul100": func(f float64) float64 { return f * 100 },
	"deref": func(p *int64) int64 {
		if p == nil {
			return 0
		}
		return *p
	},
	"deref32": func(p *int32) int32 {
		if p == nil {
			return 0
		}
		return *p
	},
	"deref64u": func(p *uint64) uint64 {
		if p == nil {
			return 0
		}
		return *p
	},
	// rawText shows a record's bytes: indented when they are JSON, as
	// text when they are UTF-8, else as Go would quote them.
	"rawText": func(b []byte) string {
		if json.Valid(b) {
			return prettyJSON(b)
		}
		if utf8.Valid(b) {
			return string(b)
		}
		return strconv.Quote(string(b))
	},
}

// prettyJSON indents stored JSON for display. It is re-encoded without
// encoding/json's HTML escaping, so <, > and & show as sent (\u003c is how
// they were stored); the template escapes them for the page. Numbers keep
// their digits.
func prettyJSON(raw json.RawMessage) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if len(raw) == 0 || dec.Decode(&v) != nil {
		return string(raw)
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if enc.Encode(v) != nil {
		return string(raw)
	}
	return strings.TrimSuffix(out.String(), "\n")
}

func ago(d time.Duration) string {
	switch {
	case d < 0:
		return "just now"
	case d < 5*time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd ago", int(d.Hours()/24))
	}
}

func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func parsePages() (map[string]*template.Template, error) {
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", f)
		if err != nil {
			return nil, fmt.Errorf("dashboard: parsing %s: %w", f, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// render writes a page. Pages are rendered to a buffer first, so a
// template error answers a clean 500 instead of half a page.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	// Behind authed the session was checked already; only the pages
	// outside it (sign-in, not found) look at the cookie here.
	sess, ok := r.Context().Value(sessionKey{}).(session)
	if !ok {
		sess, ok = d.sessions.current(r)
	}
	if ok {
		v.Signed = true
		v.CSRF = d.sessions.csrfToken(sess)
		if v.Sidebar == nil {
			v.Sidebar = d.sidebar(r)
		}
	}
	v.Version = d.cfg.Version
	if v.Heading == "" {
		v.Heading = v.Title
	}
	var buf bytes.Buffer
	if err := d.pages[page].ExecuteTemplate(&buf, "layout", v); err != nil {
		d.cfg.Log.ErrorContext(r.Context(), "rendering dashboard page", "page", page, "requestId", app.RequestID(r.Context()), "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (d *Dashboard) renderError(w http.ResponseWriter, r *http.Request, status int, title, message string) {
	d.render(w, r, status, "error", &view{Title: title, Error: message})
}

// sidebar lists organizations and their projects for the project switcher.
// On a database error it is empty, not nil, so render does not ask again.
func (d *Dashboard) sidebar(r *http.Request) []orgProjects {
	orgs, _, err := d.cfg.App.Queries.Read.Organizations(r.Context(), pageOf(100))
	if err != nil {
		return []orgProjects{}
	}
	out := make([]orgProjects, 0, len(orgs))
	for _, o := range orgs {
		ps, _, err := d.cfg.App.Queries.Read.Projects(r.Context(), o.ID, pageOf(100))
		if err != nil {
			return []orgProjects{}
		}
		out = append(out, orgProjects{Org: o, Projects: ps})
	}
	return out
}
