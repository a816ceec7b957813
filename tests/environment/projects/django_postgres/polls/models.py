from django.db import models


class Question(models.Model):
    text = models.CharField(max_length=200)
    votes = models.IntegerField(default=0)

    def vote(self) -> None:
        self.votes += 1
        self.save()
