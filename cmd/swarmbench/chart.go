package main

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// A line chart in SVG, written by hand: small multiples (one panel per
// proxy) of lines over a shared x axis in seconds and a y axis from 0 to 1
// shown in percent. Enough for the skew chart, no plotting dependency.

type point struct{ X, Y float64 }

type chartSeries struct {
	Name   string
	Points []point
}

type chartPanel struct {
	Title  string
	Series []chartSeries
}

type chart struct {
	Title       string
	XLabel      string
	XMax        float64 // seconds
	Marker      float64 // x of a dashed vertical line (the event the chart is about)
	MarkerLabel string
	Panels      []chartPanel
}

// Panel geometry in SVG user units.
const (
	panelWidth   = 440
	panelHeight  = 240
	panelMargin  = 48 // left and bottom, for the axes' labels
	panelPad     = 16
	panelColumns = 2
	titleHeight  = 40
	legendHeight = 28
)

// seriesColors tell tasks apart; the same task has the same color in every panel.
var seriesColors = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}

// writeSVG writes c as a standalone SVG document.
func (c chart) writeSVG(w io.Writer) error {
	bw := bufio.NewWriter(w)
	rows := (len(c.Panels) + panelColumns - 1) / panelColumns
	cellW, cellH := panelWidth+panelMargin+panelPad, panelHeight+panelMargin+panelPad+titleHeight/2
	width := panelColumns*cellW + panelPad
	height := titleHeight + legendHeight + rows*cellH
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(bw, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(bw, `<text x="%d" y="24" font-size="16" font-weight="bold">%s</text>`+"\n", panelPad, esc(c.Title))
	c.writeLegend(bw, titleHeight+legendHeight/2)
	for i, p := range c.Panels {
		x0 := panelPad + (i%panelColumns)*cellW + panelMargin
		y0 := titleHeight + legendHeight + (i/panelColumns)*cellH + titleHeight/2
		c.writePanel(bw, p, x0, y0)
	}
	fmt.Fprintln(bw, "</svg>")
	return bw.Flush()
}

// writeLegend names the series of the first panel with their colors.
func (c chart) writeLegend(w io.Writer, y int) {
	if len(c.Panels) == 0 {
		return
	}
	x := panelPad
	for i, s := range c.Panels[0].Series {
		fmt.Fprintf(w, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			x, y-10, seriesColors[i%len(seriesColors)], x+16, y, esc(s.Name))
		x += 24 + 8*len(s.Name)
	}
	fmt.Fprintf(w, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black" stroke-dasharray="4 3"/><text x="%d" y="%d">%s</text>`+"\n",
		x, y-5, x+20, y-5, x+24, y, esc(c.MarkerLabel))
}

// writePanel draws one panel with its plot area's top left corner at x0, y0.
func (c chart) writePanel(w io.Writer, p chartPanel, x0, y0 int) {
	sx := func(x float64) float64 { return float64(x0) + x/c.XMax*panelWidth }
	sy := func(y float64) float64 { return float64(y0+panelHeight) - y*panelHeight }
	fmt.Fprintf(w, `<g class="panel"><title>%s</title>`+"\n", esc(p.Title))
	fmt.Fprintf(w, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", x0, y0-8, esc(p.Title))
	fmt.Fprintf(w, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`+"\n", x0, y0, panelWidth, panelHeight)
	for _, pct := range []float64{0, 0.2, 0.4, 0.6, 0.8, 1} {
		fmt.Fprintf(w, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" text-anchor="end">%.0f%%</text>`+"\n",
			x0, sy(pct), x0+panelWidth, sy(pct), x0-4, sy(pct)+4, pct*100)
	}
	for s := 0.0; s <= c.XMax; s++ {
		fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="middle">%.0f</text>`+"\n", sx(s), y0+panelHeight+16, s)
	}
	fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", x0+panelWidth/2, y0+panelHeight+34, esc(c.XLabel))
	fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="black" stroke-dasharray="4 3"/>`+"\n", sx(c.Marker), y0, sx(c.Marker), y0+panelHeight)
	for i, s := range p.Series {
		var pts strings.Builder
		for _, pt := range s.Points {
			fmt.Fprintf(&pts, "%.1f,%.1f ", sx(pt.X), sy(pt.Y))
		}
		fmt.Fprintf(w, `<g class="series"><title>%s</title><polyline fill="none" stroke="%s" stroke-width="2" points="%s"/></g>`+"\n",
			esc(s.Name), seriesColors[i%len(seriesColors)], strings.TrimSpace(pts.String()))
	}
	fmt.Fprintln(w, "</g>")
}

// esc escapes text for XML.
func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
