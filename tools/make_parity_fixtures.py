"""PyTorch parity fixtures for the seven backbones (run by hand, not by CI).

Builds each backbone in PyTorch exactly as MTReclib defines it (REFERENCE.md section 5)
with small dims, random weights and random BatchNorm statistics; saves its state_dict
(tests/fixtures/parity/<model>.safetensors) and, in <model>.expected.safetensors, its
eval-mode probabilities on the shared sample rows and one training step's loss (the sum
of the tasks' BCE), every gradient and the updated BatchNorm statistics (dropout off).

    python tools/make_parity_fixtures.py   # needs torch, safetensors
"""
import csv
import pathlib

import numpy as np
import torch
from safetensors.torch import save_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "parity"
CARDS = [11, 4, 7, 2, 33, 7, 50, 8, 8, 2, 2, 2, 2, 2, 2, 2]
NUMERICAL, EMBED, TASKS = 63, 8, 2
BOTTOM, TOWER = [16, 8], [8, 4]


class EmbeddingLayer(torch.nn.Module):
    def __init__(self, field_dims, embed_dim):
        super().__init__()
        self.embedding = torch.nn.Embedding(sum(field_dims), embed_dim)
        torch.nn.init.xavier_uniform_(self.embedding.weight.data)

    def forward(self, x):  # x carries its field offsets already
        return self.embedding(x)


class MultiLayerPerceptron(torch.nn.Module):
    def __init__(self, input_dim, embed_dims, dropout, output_layer=True):
        super().__init__()
        layers = []
        for embed_dim in embed_dims:
            layers += [torch.nn.Linear(input_dim, embed_dim), torch.nn.BatchNorm1d(embed_dim),
                       torch.nn.ReLU(), torch.nn.Dropout(p=dropout)]
            input_dim = embed_dim
        if output_layer:
            layers.append(torch.nn.Linear(input_dim, 1))
        self.mlp = torch.nn.Sequential(*layers)

    def forward(self, x):
        return self.mlp(x)


class Base(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = EmbeddingLayer(CARDS, EMBED)
        self.numerical_layer = torch.nn.Linear(NUMERICAL, EMBED)
        self.embed_output_dim = (len(CARDS) + 1) * EMBED

    def fields(self, c, n):
        return torch.cat([self.embedding(c), self.numerical_layer(n).unsqueeze(1)], 1)

    def emb(self, c, n):
        return self.fields(c, n).view(-1, self.embed_output_dim)


class SharedBottom(Base):
    def __init__(self):
        super().__init__()
        self.bottom = MultiLayerPerceptron(self.embed_output_dim, BOTTOM, 0.0, output_layer=False)
        self.tower = torch.nn.ModuleList([MultiLayerPerceptron(BOTTOM[-1], TOWER, 0.0) for _ in range(TASKS)])

    def forward(self, c, n):
        fea = self.bottom(self.emb(c, n))
        return [torch.sigmoid(t(fea).squeeze(1)) for t in self.tower]


class SingleTask(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = torch.nn.ModuleList([EmbeddingLayer(CARDS, EMBED) for _ in range(TASKS)])
        self.numerical_layer = torch.nn.ModuleList([torch.nn.Linear(NUMERICAL, EMBED) for _ in range(TASKS)])
        self.embed_output_dim = (len(CARDS) + 1) * EMBED
        self.bottom = torch.nn.ModuleList([MultiLayerPerceptron(self.embed_output_dim, BOTTOM, 0.0, output_layer=False) for _ in range(TASKS)])
        self.tower = torch.nn.ModuleList([MultiLayerPerceptron(BOTTOM[-1], TOWER, 0.0) for _ in range(TASKS)])

    def forward(self, c, n):
        out = []
        for i in range(TASKS):
            emb = torch.cat([self.embedding[i](c), self.numerical_layer[i](n).unsqueeze(1)], 1).view(-1, self.embed_output_dim)
            out.append(torch.sigmoid(self.tower[i](self.bottom[i](emb)).squeeze(1)))
        return out


class OMoE(Base):
    def __init__(self, experts=3):
        super().__init__()
        self.expert = torch.nn.ModuleList([MultiLayerPerceptron(self.embed_output_dim, BOTTOM, 0.0, output_layer=False) for _ in range(experts)])
        self.tower = torch.nn.ModuleList([MultiLayerPerceptron(BOTTOM[-1], TOWER, 0.0) for _ in range(TASKS)])
        self.gate = torch.nn.Sequential(torch.nn.Linear(self.embed_output_dim, experts), torch.nn.Softmax(dim=1))

    def forward(self, c, n):
        emb = self.emb(c, n)
        gate = self.gate(emb).unsqueeze(1)
        fea = torch.bmm(gate, torch.cat([e(emb).unsqueeze(1) for e in self.expert], dim=1)).squeeze(1)
        return [torch.sigmoid(t(fea).squeeze(1)) for t in self.tower]


class MMoE(Base):
    def __init__(self, experts=3):
        super().__init__()
        self.expert = torch.nn.ModuleList([MultiLayerPerceptron(self.embed_output_dim, BOTTOM, 0.0, output_layer=False) for _ in range(experts)])
        self.tower = torch.nn.ModuleList([MultiLayerPerceptron(BOTTOM[-1], TOWER, 0.0) for _ in range(TASKS)])
        self.gate = torch.nn.ModuleList([torch.nn.Sequential(torch.nn.Linear(self.embed_output_dim, experts), torch.nn.Softmax(dim=1)) for _ in range(TASKS)])

    def forward(self, c, n):
        emb = self.emb(c, n)
        fea = torch.cat([e(emb).unsqueeze(1) for e in self.expert], dim=1)
        return [torch.sigmoid(self.tower[i](torch.bmm(self.gate[i](emb).unsqueeze(1), fea).squeeze(1)).squeeze(1)) for i in range(TASKS)]


class PLE(Base):
    def __init__(self, shared=2, specific=2):
        super().__init__()
        self.layers_num = len(BOTTOM)
        task_experts, task_gates, share_experts, share_gates = [], [], [], []
        for i in range(self.layers_num):
            input_dim = self.embed_output_dim if i == 0 else BOTTOM[i - 1]
            share_experts.append(torch.nn.ModuleList([MultiLayerPerceptron(input_dim, [BOTTOM[i]], 0.0, output_layer=False) for _ in range(shared)]))
            share_gates.append(torch.nn.Sequential(torch.nn.Linear(input_dim, shared + TASKS * specific), torch.nn.Softmax(dim=1)))
            task_experts.append(torch.nn.ModuleList([torch.nn.ModuleList([MultiLayerPerceptron(input_dim, [BOTTOM[i]], 0.0, output_layer=False) for _ in range(specific)]) for _ in range(TASKS)]))
            task_gates.append(torch.nn.ModuleList([torch.nn.Sequential(torch.nn.Linear(input_dim, shared + specific), torch.nn.Softmax(dim=1)) for _ in range(TASKS)]))
        self.task_experts = torch.nn.ModuleList(task_experts)
        self.task_gates = torch.nn.ModuleList(task_gates)
        self.share_experts = torch.nn.ModuleList(share_experts)
        self.share_gates = torch.nn.ModuleList(share_gates)
        self.tower = torch.nn.ModuleList([MultiLayerPerceptron(BOTTOM[-1], TOWER, 0.0) for _ in range(TASKS)])

    def forward(self, c, n):
        emb = self.emb(c, n)
        task_fea = [emb for _ in range(TASKS + 1)]
        for i in range(self.layers_num):
            share_output = [e(task_fea[-1]).unsqueeze(1) for e in self.share_experts[i]]
            task_output_list = []
            for j in range(TASKS):
                task_output = [e(task_fea[j]).unsqueeze(1) for e in self.task_experts[i][j]]
                task_output_list.extend(task_output)
                mix = torch.cat(task_output + share_output, dim=1)
                gate = self.task_gates[i][j](task_fea[j]).unsqueeze(1)
                task_fea[j] = torch.bmm(gate, mix).squeeze(1)
            if i != self.layers_num - 1:
                gate = self.share_gates[i](task_fea[-1]).unsqueeze(1)
                mix = torch.cat(task_output_list + share_output, dim=1)
                task_fea[-1] = torch.bmm(gate, mix).squeeze(1)
        return [torch.sigmoid(self.tower[i](task_fea[i]).squeeze(1)) for i in range(TASKS)]


class AITM(Base):
    def __init__(self):
        super().__init__()
        d = BOTTOM[-1]
        self.hidden_dim = d
        self.g = torch.nn.ModuleList([torch.nn.Linear(d, d) for _ in range(TASKS - 1)])
        self.h1, self.h2, self.h3 = torch.nn.Linear(d, d), torch.nn.Linear(d, d), torch.nn.Linear(d, d)
        self.bottom = torch.nn.ModuleList([MultiLayerPerceptron(self.embed_output_dim, BOTTOM, 0.0, output_layer=False) for _ in range(TASKS)])
        self.tower = torch.nn.ModuleList([MultiLayerPerceptron(d, TOWER, 0.0) for _ in range(TASKS)])

    def forward(self, c, n):
        emb = self.emb(c, n)
        fea = [b(emb) for b in self.bottom]
        for i in range(1, TASKS):
            p = self.g[i - 1](fea[i - 1]).unsqueeze(1)
            q = fea[i].unsqueeze(1)
            x = torch.cat([p, q], dim=1)
            V, K, Q = self.h1(x), self.h2(x), self.h3(x)
            fea[i] = torch.sum(torch.nn.functional.softmax(torch.sum(K * Q, 2, True) / np.sqrt(self.hidden_dim), dim=1) * V, 1)
        return [torch.sigmoid(self.tower[i](fea[i]).squeeze(1)) for i in range(TASKS)]


class MetaHeac(Base):
    def __init__(self, experts=3, critics=2):
        super().__init__()
        self.task_embedding = torch.nn.Embedding(TASKS, EMBED)
        self.expert = torch.nn.ModuleList([MultiLayerPerceptron(self.embed_output_dim, BOTTOM, 0.0, output_layer=False) for _ in range(experts)])
        self.critic = torch.nn.ModuleList([MultiLayerPerceptron(BOTTOM[-1], TOWER, 0.0) for _ in range(critics)])
        self.expert_gate = torch.nn.Sequential(torch.nn.Linear(EMBED * 2, experts), torch.nn.Softmax(dim=1))
        self.critic_gate = torch.nn.Sequential(torch.nn.Linear(EMBED * 2, critics), torch.nn.Softmax(dim=1))

    def forward(self, c, n):
        fields = self.fields(c, n)
        b = fields.size(0)
        gate_inputs = []
        for i in range(TASKS):
            task = self.task_embedding(torch.full((b, 1), i, dtype=torch.long)).squeeze(1)
            gate_inputs.append(torch.cat([task, torch.mean(fields, dim=1)], dim=1))
        emb = fields.view(-1, self.embed_output_dim)
        experts = torch.cat([e(emb).unsqueeze(1) for e in self.expert], dim=1)
        out = []
        for i in range(TASKS):
            fea = torch.bmm(self.expert_gate(gate_inputs[i]).unsqueeze(1), experts).squeeze(1)
            critic = torch.cat([torch.sigmoid(c(fea)) for c in self.critic], dim=1)
            out.append(torch.mean(self.critic_gate(gate_inputs[i]) * critic, dim=1))
        return out


MODELS = {"sharedbottom": SharedBottom, "singletask": SingleTask, "omoe": OMoE, "mmoe": MMoE,
          "ple": PLE, "aitm": AITM, "metaheac": MetaHeac}


def sample_rows():
    with open(ROOT / "tests" / "fixtures" / "aliexpress-sample" / "train.csv") as f:
        rows = list(csv.reader(f))[1:]
    offsets = np.concatenate([[0], np.cumsum(CARDS)[:-1]])
    cat = torch.tensor([[int(v) for v in r[1:17]] for r in rows], dtype=torch.long) + torch.tensor(offsets)
    num = torch.tensor([[float(v) for v in r[17:80]] for r in rows], dtype=torch.float32)
    labels = torch.tensor([[float(v) for v in r[80:82]] for r in rows], dtype=torch.float32)
    return cat, num, labels


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    cat, num, labels = sample_rows()
    for index, (name, cls) in enumerate(MODELS.items()):
        torch.manual_seed(100 + index)
        model = cls()
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.normal_(0.0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.data.uniform_(0.5, 1.5)
                module.bias.data.normal_(0.0, 0.1)
                module.num_batches_tracked.fill_(3)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, OUT / f"{name}.safetensors")
        expected = {}
        model.eval()
        with torch.no_grad():
            expected["eval.probabilities"] = torch.stack(model(cat, num), 1)
        model.train()
        probabilities = model(cat, num)
        loss = sum(torch.nn.functional.binary_cross_entropy(p, labels[:, t]) for t, p in enumerate(probabilities))
        loss.backward()
        expected["train.loss"] = loss.detach().reshape(())
        for key, param in model.named_parameters():
            # An unused parameter (PLE's last shared gate) has no gradient: zeros.
            expected[f"grad.{key}"] = (param.grad if param.grad is not None else torch.zeros_like(param)).contiguous()
        for key, buffer in model.named_buffers():
            expected[f"after.{key}"] = buffer.contiguous()
        save_file(expected, OUT / f"{name}.expected.safetensors")
        print(f"{name}: loss {loss.item():.6f}, {sum(p.numel() for p in model.parameters())} parameters")


if __name__ == "__main__":
    main()
