import pytest
from django.db import connection

from polls.models import Question


@pytest.mark.django_db
def test_vote_is_saved():
    question = Question.objects.create(text="tabs or spaces?")
    question.vote()
    assert Question.objects.get(pk=question.pk).votes == 1


@pytest.mark.django_db
def test_runs_on_postgres():
    assert connection.vendor == "postgresql"
