package dashboard

import (
	"net/http"
	"net/url"

	"github.com/gorilla/mux"

	"github.com/gamify/boost/app"
	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/quarantine"
)

// quarantineList is the quarantine page's data.
type quarantineList struct {
	Records []quarantine.Record
	Stage   string
	Status  string
}

func (d *Dashboard) quarantinePage(w http.ResponseWriter, r *http.Request) {
	v := &view{Title: "Quarantine", Nav: "quarantine"}
	if d.cfg.App.Queries.Quarantine == nil {
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
	recs, err := d.cfg.App.Queries.Quarantine.List(r.Context(), quarantine.Filter{Stage: list.Stage, Status: list.Status, Limit: 200})
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
	if _, err := d.cfg.App.Commands.Reprocess.Handle(r.Context(), app.Reprocess{ID: rec.ID}); err != nil {
		v := &view{Title: "Quarantined record", Nav: "quarantine", Data: rec}
		status, msg := opMessage(err)
		switch e, _ := err.(*app.Error); {
		case e != nil && e.Code == "still_failing":
			v.Error = "Reprocessing failed again; the record stays quarantined: " + msg
		case e != nil && e.Code == "already_reprocessed":
			v.Error = "This record was already reprocessed."
		default:
			v.Error = "Reprocessing could not run now: " + msg
		}
		if fresh, gerr := d.cfg.App.Queries.Quarantine.Get(r.Context(), rec.ID); gerr == nil {
			v.Data = fresh
		}
		d.render(w, r, status, "quarantined", v)
		return
	}
	http.Redirect(w, r, "/dashboard/quarantine?reprocessed="+url.QueryEscape(rec.ID), http.StatusSeeOther)
}

// quarantined reads the record in the path, answering the error itself.
func (d *Dashboard) quarantined(w http.ResponseWriter, r *http.Request) (quarantine.Record, bool) {
	if d.cfg.App.Queries.Quarantine == nil {
		d.renderError(w, r, http.StatusNotFound, "No quarantine", "This process does not serve the quarantine.")
		return quarantine.Record{}, false
	}
	id, err := domain.ParseID(mux.Vars(r)["id"])
	if err != nil {
		d.renderError(w, r, http.StatusNotFound, "Not found", "There is no quarantined record with that id.")
		return quarantine.Record{}, false
	}
	rec, err := d.cfg.App.Queries.Quarantine.Get(r.Context(), id)
	if app.KindOf(err) == app.NotFound {
		d.renderError(w, r, http.StatusNotFound, "Not found", "There is no quarantined record "+id+".")
		return quarantine.Record{}, false
	}
	if err != nil {
		_, msg := opMessage(err)
		d.renderError(w, r, http.StatusServiceUnavailable, "Quarantine unavailable", msg)
		return quarantine.Record{}, false
	}
	return rec, true
}
