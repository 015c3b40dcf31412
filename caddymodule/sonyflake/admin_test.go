package sonyflake

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestAdminStateShowsTheLastIDsTime(t *testing.T) {
	clock := &fakeClock{t: handlerT0}
	app := testApp(defaultLayout, 10, clock.now, clock.sleep)
	if got := app.registry.states(); len(got) != 1 || got[0].MachineID != 10 {
		t.Fatalf("states %+v, want machine ID 10's generator", got)
	}
	clock.t = handlerT0.Add(3 * time.Second)
	minted, err := app.stamp(0)
	if err != nil {
		t.Fatal(err)
	}
	st := app.registry.states()[0]
	if st.LastID != minted.id || !st.LastIDTime.Equal(defaultLayout.timeOf(defaultLayout.decompose(minted.id).Time)) {
		t.Errorf("state %+v, want last ID %d at its time field", st, minted.id)
	}
	if st.LastIDTime.Before(clock.t.Add(-defaultLayout.unit)) || st.LastIDTime.After(clock.t.Add(maxRunAhead)) {
		t.Errorf("last ID's time %s, want about the clock's %s", st.LastIDTime, clock.t)
	}
	if st.TimeUnit != "10ms" || st.SequenceBits != 8 || st.MachineIDBits != 16 {
		t.Errorf("layout %s/%d/%d, want the default", st.TimeUnit, st.SequenceBits, st.MachineIDBits)
	}
}

func TestAdminStateAnswersGETOnly(t *testing.T) {
	w := httptest.NewRecorder()
	if err := (adminSonyflake{}).handleState(w, httptest.NewRequest(http.MethodGet, "/sonyflake/state", nil)); err != nil {
		t.Fatal(err)
	}
	var states []generatorState
	if err := json.Unmarshal(w.Body.Bytes(), &states); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	err := (adminSonyflake{}).handleState(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/sonyflake/state", nil))
	if err == nil {
		t.Fatal("POST answered")
	}
}
