"""A tiny stock-keeping service on PostgreSQL (psycopg2)."""
