package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestChartIsValidSVGWithEverySeries(t *testing.T) {
	c := chart{
		Title: `shares <&> "quoted"`, XLabel: "seconds", XMax: 4, Marker: 1, MarkerLabel: "scale-out",
		Panels: []chartPanel{
			{Title: "edge, dynamic swarm", Series: []chartSeries{
				{Name: "app.1", Points: []point{{0.25, 0.33}, {0.5, 0.2}}},
				{Name: "app.4", Points: []point{{0.25, 0}, {0.5, 0.2}}},
			}},
			{Title: "Caddy to the VIP", Series: []chartSeries{
				{Name: "app.1", Points: []point{{0.25, 0.33}, {0.5, 0.33}}},
				{Name: "app.4", Points: []point{{0.25, 0}, {0.5, 0}}},
			}},
			{Title: "HAProxy", Series: []chartSeries{{Name: "app.1"}}}, // no points: an empty line
		},
	}
	var buf bytes.Buffer
	if err := c.writeSVG(&buf); err != nil {
		t.Fatal(err)
	}

	// Walk the document: it must parse, have an <svg> root, and each panel
	// (a <g class="panel"> titled with its name) must hold a polyline per series.
	doc := buf.String()
	dec := xml.NewDecoder(strings.NewReader(doc))
	var stack []string
	var panels []string
	series := map[string][]string{}
	var lastTitle, panel string
	polylines := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, doc)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if len(stack) == 0 && (tok.Name.Local != "svg" || tok.Name.Space != "http://www.w3.org/2000/svg") {
				t.Fatalf("root is %v, want svg in the SVG namespace", tok.Name)
			}
			stack = append(stack, tok.Name.Local)
			if tok.Name.Local == "polyline" {
				polylines++
				series[panel] = append(series[panel], lastTitle)
			}
		case xml.CharData:
			if len(stack) > 0 && stack[len(stack)-1] == "title" {
				lastTitle = string(tok)
				if len(stack) == 3 { // svg > g.panel > title
					panel = lastTitle
					panels = append(panels, panel)
				}
			}
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		}
	}
	if want := []string{"edge, dynamic swarm", "Caddy to the VIP", "HAProxy"}; !slices.Equal(panels, want) {
		t.Errorf("panels %q, want %q", panels, want)
	}
	if got := series["edge, dynamic swarm"]; !slices.Equal(got, []string{"app.1", "app.4"}) {
		t.Errorf("series of the first panel: %q", got)
	}
	if polylines != 5 {
		t.Errorf("%d polylines, want 5", polylines)
	}
	if !strings.Contains(doc, "shares &lt;&amp;&gt;") {
		t.Error("title not escaped")
	}
}
