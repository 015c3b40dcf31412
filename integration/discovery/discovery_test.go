// Package discovery tests task discovery end to end: the real edge binary
// in front of the loopback Swarm stand-in, under keep-alive load, checking
// what a user sees — where requests go, which fail and how slow they are —
// while the service scales, tasks die, DNS fails and the config reloads.
package discovery

import (
	"testing"
	"time"

	"github.com/swarmedge/swarmedge/integration/edge"
	"github.com/swarmedge/swarmedge/integration/load"
	"github.com/swarmedge/swarmedge/integration/swarmsim"
	"github.com/swarmedge/swarmedge/integration/testsupport"
)

// clients is the number of keep-alive clients of a load run, as in the
// measured anchors (wrk -c30).
const clients = 30

// TestScaleOutReachesNewTasks scales 3 → 5 under keep-alive load, sent
// both through the edge and straight at the VIP: after refresh + 1 s the
// edge spreads requests evenly over all 5 tasks, while the VIP leaves the
// 2 new tasks with none. A single keep-alive client is spread too.
func TestScaleOutReachesNewTasks(t *testing.T) {
	s := startService(t, 3)
	e := edge.MustStart(t, exampleTemplate(t, s))

	const runFor = 6 * time.Second
	viaEdge := startLoad(t, load.Config{URL: e.URL("/"), Clients: clients, Duration: runFor})
	viaVIP := startLoad(t, load.Config{URL: vipURL(s, "/"), Clients: clients, Duration: runFor})
	time.Sleep(time.Second) // every client holds its connection to one of 3 tasks
	edgeScaled, vipScaled := viaEdge.Elapsed(), viaVIP.Elapsed()
	if err := s.Scale(5); err != nil {
		t.Fatal(err)
	}
	edgeRes, vipRes := viaEdge.Wait(), viaVIP.Wait()

	t.Logf("scaled 3 → 5: every task had traffic through the edge %v later",
		allTasksReached(t, edgeRes, edgeScaled, taskNames(s, 5)).Round(time.Millisecond))
	const settle = refresh + time.Second
	edgeAfter := edgeRes.Summarize(edgeScaled+settle, edgeRes.Elapsed)
	vipAfter := vipRes.Summarize(vipScaled+settle, vipRes.Elapsed)
	t.Logf("after scaling 3 → 5, from %v on:\n  edge: %v\n  VIP:  %v", settle, edgeAfter, vipAfter)
	checkNoFailure(t, "edge", edgeRes.Summary())
	checkNoFailure(t, "VIP", vipRes.Summary())
	checkShares(t, "edge after scale-out", edgeAfter, taskNames(s, 5), 0.15)
	for _, task := range taskNames(s, 5)[3:] {
		// 0 unless a client had to reconnect (see load.Config.Clients):
		// each of 30 carries about 3 %
		if share := vipAfter.Share(task); share > 0.05 {
			t.Errorf("VIP: new task %s has %.1f%% of the requests; IPVS-like balancing should give it none", task, 100*share)
		}
	}

	t.Run("one keep-alive client", func(t *testing.T) {
		edgeOne := startLoad(t, load.Config{URL: e.URL("/"), Requests: 1000}).Wait().Summary()
		vipOne := startLoad(t, load.Config{URL: vipURL(s, "/"), Requests: 1000}).Wait().Summary()
		t.Logf("one client:\n  edge: %v\n  VIP:  %v", edgeOne, vipOne)
		checkNoFailure(t, "edge", edgeOne)
		checkShares(t, "edge, one client", edgeOne, taskNames(s, 5), 0.5)
		if len(vipOne.PerTask) != 1 {
			t.Errorf("VIP, one client: answered by %v, want one task", vipOne.PerTask)
		}
	})
}

// TestDNSDropUnderLoad makes DNS drop every query for 10 s under load:
// the edge keeps serving its last good set, so no request fails and none
// waits on DNS.
func TestDNSDropUnderLoad(t *testing.T) {
	s := startService(t, 5)
	e := edge.MustStart(t, exampleTemplate(t, s))

	const dropFor = 10 * time.Second
	run := startLoad(t, load.Config{URL: e.URL("/"), Clients: clients, Duration: dropFor + 2*time.Second})
	time.Sleep(time.Second)
	s.SetDNSFault(swarmsim.FaultDrop)
	droppedAt := run.Elapsed()
	time.Sleep(dropFor)
	s.SetDNSFault(swarmsim.FaultNone)
	res := run.Wait()

	during := res.Summarize(droppedAt, droppedAt+dropFor)
	t.Logf("while DNS drops every query: %v", during)
	all := res.Summary()
	checkNoFailure(t, "DNS dropped", all)
	// A request that waited on a dropped query would wait out its 15 s
	// timeout; serving from the last good set takes milliseconds, and
	// under a second on a loaded machine.
	if all.P99 >= 3*time.Second {
		t.Errorf("p99 latency %v with DNS dropped, want < 3s: requests wait on DNS", all.P99)
	}
	checkShares(t, "DNS dropped", during, taskNames(s, 5), 0.15)
}

// TestTaskKilledUnderLoad kills one of 5 tasks under load, its DNS record
// kept (a stale record: the edge keeps dialing it) or dropped: with the
// settings of Caddyfile.example no request fails.
func TestTaskKilledUnderLoad(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy swarmsim.RecordPolicy
	}{
		{"stale record", swarmsim.KeepRecord},
		{"record dropped", swarmsim.DropRecord},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startService(t, 5)
			e := edge.MustStart(t, exampleTemplate(t, s))

			run := startLoad(t, load.Config{URL: e.URL("/"), Clients: clients, Duration: 4 * time.Second})
			time.Sleep(time.Second)
			if err := s.Kill(3, tc.policy); err != nil {
				t.Fatal(err)
			}
			killedAt := run.Elapsed()
			res := run.Wait()

			all := res.Summary()
			t.Logf("task 3 killed at %v: %v", killedAt.Round(time.Millisecond), all)
			checkNoFailure(t, "task killed", all)
			after := res.Summarize(killedAt+100*time.Millisecond, res.Elapsed)
			if n := after.PerTask[s.Name()+".3"]; n > 0 {
				t.Errorf("the dead task answered %d requests", n)
			}
			survivors := append(taskNames(s, 2), taskNames(s, 5)[3:]...)
			checkShares(t, "after the kill", res.Summarize(killedAt+settleAfterKill, res.Elapsed), survivors, 0.15)
		})
	}
}

// settleAfterKill is when the shares of the surviving tasks are measured
// from: the edge has had one lookup to notice a dropped record.
const settleAfterKill = refresh + time.Second

// TestNoTaskAnswers503AtOnce scales to 0: once the edge has had no task
// for longer than wait_for_tasks, it answers 503 at once even while DNS
// takes seconds to answer NXDOMAIN,
// and when the service is back, traffic reaches every task within 3 s.
func TestNoTaskAnswers503AtOnce(t *testing.T) {
	s := startService(t, 5)
	e := edge.MustStart(t, exampleTemplate(t, s))

	if err := s.Scale(0); err != nil {
		t.Fatal(err)
	}
	// an empty set takes two NXDOMAIN answers in a row
	testsupport.WaitFor(t, "edge serves no task", 30*time.Second, func() bool { return len(adminTasks(t, e)) == 0 })
	// until wait_for_tasks has passed, requests wait for a task to come back
	waitOutWaitForTasks(t, e)
	const nxDomainDelay = 10 * time.Second
	s.SetNXDomainDelay(nxDomainDelay) // Docker's slow NXDOMAIN: the edge must not wait for it

	empty := startLoad(t, load.Config{URL: e.URL("/"), Clients: 4, Duration: 2 * time.Second}).Wait().Summary()
	t.Logf("no task: %v", empty)
	if empty.Failures["status 503"] != empty.Requests || empty.Requests == 0 {
		t.Errorf("no task: %v, want only 503s", empty.Failures)
	}
	// At once: a request that waited on DNS would take the NXDOMAIN
	// delay; judged against it with room for a loaded machine.
	if empty.Max >= nxDomainDelay/4 {
		t.Errorf("no task: slowest 503 took %v, want < %v (not waiting on DNS's %v NXDOMAIN)", empty.Max, nxDomainDelay/4, nxDomainDelay)
	}

	run := startLoad(t, load.Config{URL: e.URL("/"), Clients: clients, Duration: 4 * time.Second})
	time.Sleep(500 * time.Millisecond)
	if err := s.Scale(5); err != nil {
		t.Fatal(err)
	}
	scaledAt := run.Elapsed()
	res := run.Wait()
	allReached := allTasksReached(t, res, scaledAt, taskNames(s, 5))
	t.Logf("scaled back to 5: every task had traffic %v later", allReached.Round(time.Millisecond))
	if allReached > 3*time.Second {
		t.Errorf("every task had traffic only %v after scaling back to 5, want ≤ 3s", allReached)
	}
	if after := res.Summarize(scaledAt+3*time.Second, res.Elapsed); after.Failed() > 0 {
		t.Errorf("still failing 3 s after scaling back: %v", after.Failures)
	}
}

// TestHundredTasksAreAllFound scales to 100 tasks, whose DNS answer is
// truncated over UDP: the edge finds them all (over TCP), shows them on
// its admin endpoint and sends traffic to each.
func TestHundredTasksAreAllFound(t *testing.T) {
	s := startService(t, 5)
	e := edge.MustStart(t, exampleTemplate(t, s))
	if err := s.Scale(100); err != nil {
		t.Fatal(err)
	}
	testsupport.WaitFor(t, "admin endpoint shows 100 tasks served", 30*time.Second, func() bool {
		return servedCount(adminTasks(t, e)) == 100
	})

	sum := startLoad(t, load.Config{URL: e.URL("/"), Clients: clients, Requests: 5000}).Wait().Summary()
	checkNoFailure(t, "100 tasks", sum)
	for _, task := range taskNames(s, 100) {
		if sum.PerTask[task] == 0 {
			t.Errorf("task %s got none of %d requests", task, sum.Requests)
		}
	}
	t.Logf("100 tasks: %d requests reached %d tasks", sum.Requests, len(sum.PerTask))
}

// TestHealthProbesWithholdFailingTasks probes /healthz: a task that fails
// its probe but keeps its DNS record gets no traffic after one probe
// interval; when every task fails, every task is served.
func TestHealthProbesWithholdFailingTasks(t *testing.T) {
	const interval = 500 * time.Millisecond
	s := startService(t, 5)
	e := edge.MustStart(t, swarmCaddyfile(s, "health_uri /healthz\n\t\t\thealth_interval "+interval.String()))

	run := startLoad(t, load.Config{URL: e.URL("/"), Clients: clients, Duration: 5 * time.Second})
	time.Sleep(500 * time.Millisecond)
	if err := s.SetHealthy(2, false, swarmsim.KeepRecord); err != nil {
		t.Fatal(err)
	}
	oneFailing := run.Elapsed()
	time.Sleep(2 * time.Second)
	for slot := 1; slot <= 5; slot++ {
		if err := s.SetHealthy(slot, false, swarmsim.KeepRecord); err != nil {
			t.Fatal(err)
		}
	}
	allFailing := run.Elapsed()
	res := run.Wait()

	// a probe is a loopback round trip: it ends well within this margin,
	// even on a busy machine
	const probed = interval + 400*time.Millisecond
	withheld := res.Summarize(oneFailing+probed, allFailing)
	t.Logf("task 2 failing: %v", withheld)
	if n := withheld.PerTask[s.Name()+".2"]; n > 0 {
		t.Errorf("task 2 fails its probe yet got %d requests after one probe interval", n)
	}
	checkShares(t, "task 2 failing", withheld, append(taskNames(s, 1), taskNames(s, 5)[2:]...), 0.15)
	failOpen := res.Summarize(allFailing+probed, res.Elapsed)
	t.Logf("every task failing: %v", failOpen)
	checkShares(t, "every task failing", failOpen, taskNames(s, 5), 0.15)
	checkNoFailure(t, "health probes", res.Summary())
}

// TestReloadKeepsLoopAndSpread reloads the config under load while DNS is
// down: the new config joins the running lookup and its set of tasks, so
// no request fails (no 503 burst) and the spread holds.
func TestReloadKeepsLoopAndSpread(t *testing.T) {
	s := startService(t, 5)
	config := exampleTemplate(t, s)
	e := edge.MustStart(t, config)

	run := startLoad(t, load.Config{URL: e.URL("/"), Clients: clients, Duration: 4 * time.Second})
	time.Sleep(time.Second)
	// a new lookup would find nothing: only the running one has the tasks
	s.SetDNSFault(swarmsim.FaultDrop)
	if err := e.Reload(config + "\n# reloaded\n:{{.HTTPSPort}} {\n\trespond 404\n}\n"); err != nil {
		t.Fatal(err)
	}
	reloadedAt := run.Elapsed()
	res := run.Wait()

	after := res.Summarize(reloadedAt, res.Elapsed)
	t.Logf("after the reload: %v", after)
	checkNoFailure(t, "across the reload", res.Summary())
	checkShares(t, "after the reload", after, taskNames(s, 5), 0.15)
}
