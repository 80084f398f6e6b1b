"""Readers of annotated corpora (BRAT standoff, IOB token files) into one :class:`~engine.corpora.document.Document`
shape that training and evaluation share."""
