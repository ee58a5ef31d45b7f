package dashboard

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/gorilla/mux"

	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/quarantine"
)

// Quarantine lists and reprocesses what pipeline stages set aside; the
// quarantine service implements it.
type Quarantine interface {
	List(ctx context.Context, f quarantine.Filter) ([]quarantine.Record, error)
	Get(ctx context.Context, id string) (quarantine.Record, error)
	Reprocess(ctx context.Context, id string) (quarantine.Record, error)
}

// quarantineList is the quarantine page's data.
type quarantineList struct {
	Records []quarantine.Record
	Stage   string
	Status  string
}

func (d *Dashboard) quarantinePage(w http.ResponseWriter, r *http.Request) {
	v := &view{Title: "Quarantine", Nav: "quarantine"}
	if d.cfg.Quarantine == nil {
		v.Error = "This process does not serve the quarantine."
		d.render(w, r, http.StatusOK, "quarantine", v)
		return
	}
	q := r.URL.Query()
	list := quarantineList{Stage: q.Get("stage"), Status: q.Get("status")}
	if list.Status == "" {
		list.Status = quarantine.Held
	}
	if list.Status == "all" {
		list.Status = ""
	}
	recs, err := d.cfg.Quarantine.List(r.Context(), quarantine.Filter{Stage: list.Stage, Status: list.Status, Limit: 200})
	if err != nil {
		v.Error = "The quarantine could not be read: " + err.Error()
	}
	list.Records = recs
	if n := q.Get("reprocessed"); n != "" {
		v.Notice = "Record " + n + " was reprocessed: its stage applied it."
	}
	v.Data = list
	d.render(w, r, http.StatusOK, "quarantine", v)
}

func (d *Dashboard) quarantinedPage(w http.ResponseWriter, r *http.Request) {
	rec, ok := d.quarantined(w, r)
	if !ok {
		return
	}
	d.render(w, r, http.StatusOK, "quarantined", &view{Title: "Quarantined record", Nav: "quarantine", Data: rec})
}

func (d *Dashboard) reprocess(w http.ResponseWriter, r *http.Request) {
	rec, ok := d.quarantined(w, r)
	if !ok {
		return
	}
	if _, err := d.cfg.Quarantine.Reprocess(r.Context(), rec.ID); err != nil {
		v := &view{Title: "Quarantined record", Nav: "quarantine", Data: rec}
		status := http.StatusConflict
		var still *quarantine.StillFailing
		switch {
		case errors.As(err, &still):
			v.Error = "Reprocessing failed again; the record stays quarantined: " + still.Err.Error()
		case errors.Is(err, quarantine.ErrAlreadyReprocessed):
			v.Error = "This record was already reprocessed."
		default:
			status = http.StatusServiceUnavailable
			v.Error = "Reprocessing could not run now: " + err.Error()
		}
		if fresh, gerr := d.cfg.Quarantine.Get(r.Context(), rec.ID); gerr == nil {
			v.Data = fresh
		}
		d.render(w, r, status, "quarantined", v)
		return
	}
	http.Redirect(w, r, "/dashboard/quarantine?reprocessed="+url.QueryEscape(rec.ID), http.StatusSeeOther)
}

// quarantined reads the record in the path, answering the error itself.
func (d *Dashboard) quarantined(w http.ResponseWriter, r *http.Request) (quarantine.Record, bool) {
	if d.cfg.Quarantine == nil {
		d.renderError(w, r, http.StatusNotFound, "No quarantine", "This process does not serve the quarantine.")
		return quarantine.Record{}, false
	}
	id, err := domain.ParseID(mux.Vars(r)["id"])
	if err != nil {
		d.renderError(w, r, http.StatusNotFound, "Not found", "There is no quarantined record with that id.")
		return quarantine.Record{}, false
	}
	rec, err := d.cfg.Quarantine.Get(r.Context(), id)
	if errors.Is(err, quarantine.ErrNotFound) {
		d.renderError(w, r, http.StatusNotFound, "Not found", "There is no quarantined record "+id+".")
		return quarantine.Record{}, false
	}
	if err != nil {
		d.renderError(w, r, http.StatusServiceUnavailable, "Quarantine unavailable", err.Error())
		return quarantine.Record{}, false
	}
	return rec, true
}
