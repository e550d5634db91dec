"""Retail orders: a week of shop orders, cleaned and loaded into a DuckDB warehouse.

``retail.pipelines`` holds the Legato pipelines; the other modules are plain functions
on pandas DataFrames that the tasks call, and that can be tested on their own.
"""
