"""The web UI: server-rendered pages (``pages``), what they draw (``views``), the DAG layout
(``dag_layout``) and Gantt chart (``gantt``) as SVG, templates and static files. It calls only
the service door.
"""
